"""The sandbox server: sandbox sessions for remote orchestrators, over HTTP and a WebSocket."""
