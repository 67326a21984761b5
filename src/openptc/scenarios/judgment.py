"""Judgment calls: the scenario built to show where PTC does not pay.

"We need a vendor for on-call paging: read our requirements and the three proposals, pick one."
Four calls, each returning prose (requirements of ~200 words, proposals of 300-500), and every
word must be read by the model: whether a proposal meets a must-have is stated in varied wording
("voice calls are on our roadmap", "Google Workspace only"). A program cannot decide that, so it
can only fetch the texts and print them in full: as many model calls as direct tool calling, plus
the program and the code tool's description.

The proposals are written from a fixed seed: which vendor is cheapest and misses a must-have,
which misses another, which meets them all, their prices, and which phrasing each one gets.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from openptc.scenarios import answers
from openptc.scenarios.base import Scenario, Verdict
from openptc.scenarios.judgment_brains import judgment_brain

QUESTION = (
    "We need a vendor for on-call paging. Read our requirements and the three proposals we "
    "received, and pick one."
)
SEED = 20250312
VendorId = Literal["beacon", "klaxon", "nightwatch"]
VENDORS: dict[VendorId, str] = {"beacon": "Beacon", "klaxon": "Klaxon", "nightwatch": "Nightwatch"}
MUST_HAVES = {
    "voice": "escalation by voice call",
    "alertmanager": "alerts straight from Alertmanager",
    "saml": "SAML single sign-on",
    "eu": "incident data stored in the EU",
}
NICE = ("slack", "mobile", "status")

REQUIREMENTS = """\
We are replacing the home-grown paging scripts before the next on-call rotation starts. About \
forty engineers will be on call across three rotations, and the budget we have been given is \
$25 per user per month.

A few things are non-negotiable. Every page must be able to escalate to a voice call on the \
responder's phone: people sleep through push notifications, and last year that cost us a \
two-hour outage. Our alerts come from Prometheus, so the tool must accept alerts straight from \
Alertmanager, without glue code that we would have to run ourselves. Security requires SAML \
single sign-on through Okta for every internal tool, with no exceptions. And because most of \
our customers are in Europe, incident data must be stored in the EU.

Some things would be nice to have but will not decide it on their own: a Slack integration \
that lets people acknowledge pages from a channel, a mobile app with a decent on-call calendar, \
and a public status page so that support does not have to write customer updates by hand.

Please compare the three proposals we received, from Beacon, Klaxon and Nightwatch, and \
recommend one. Price matters, but only among the proposals that meet every requirement above.
"""

_MET: dict[str, tuple[str, ...]] = {
    "voice": (
        "If nobody acknowledges a page within five minutes, {v} escalates with a voice call to "
        "the responder's phone, then moves on to the secondary on call.",
        "Escalation policies can ring responders with automated phone calls in addition to SMS "
        "and push, and each step of a policy can use a different channel.",
        "Voice calls are included on every plan: our telephony partner places them from local "
        "numbers in forty countries, which keeps them out of spam filters.",
    ),
    "alertmanager": (
        "{v} ships a native Alertmanager receiver: point Prometheus at the endpoint we give you "
        "and alerts open incidents with their labels intact.",
        "Alerts from Prometheus Alertmanager arrive through a built-in integration that groups "
        "and deduplicates them by fingerprint.",
        "Our Alertmanager integration is configured in two lines of YAML and is used by most of "
        "our customers who run Prometheus.",
    ),
    "saml": (
        "Sign-in goes through SAML 2.0 single sign-on, and we maintain a certified Okta "
        "application with SCIM provisioning.",
        "Every plan includes SAML single sign-on with Okta, Azure AD or any standards-based "
        "identity provider, and you can enforce it for all users.",
        "Accounts are managed from your identity provider: SAML sign-in and SCIM "
        "deprovisioning work with Okta out of the box.",
    ),
    "eu": (
        "Customers choose where their data lives; for you it would be our Frankfurt region, so "
        "incident data stays in the EU.",
        "Incident data for European customers is stored in our Dublin and Amsterdam data "
        "centers, inside the EU, under a standard data processing agreement.",
        "Data residency in the EU is available on every plan: the account, the incidents and "
        "their timelines are stored and backed up in Paris.",
    ),
    "slack": (
        "Pages can be acknowledged and resolved from Slack, and each incident gets its own "
        "channel automatically.",
    ),
    "mobile": (
        "The mobile app for iOS and Android shows the on-call calendar and lets people swap "
        "shifts in two taps.",
    ),
    "status": (
        "A hosted status page is included, and updates can be published to it straight from "
        "the incident timeline.",
    ),
}
_UNMET: dict[str, tuple[str, ...]] = {
    "voice": (
        "{v} notifies responders by push notification and SMS; we do not place voice calls, "
        "because in our experience they add cost without improving response times.",
        "Voice calling is not part of the product today: escalations repeat the push "
        "notification every minute until someone acknowledges.",
        "Pages reach people through the app and by text message; phone calls are on our "
        "roadmap for next year.",
    ),
    "alertmanager": (
        "There is no built-in Alertmanager integration yet; customers run a small open-source "
        "bridge that forwards its webhooks to our events API.",
        "Alertmanager support is planned for the second half of the year; until then alerts "
        "have to be posted to our REST API by a relay you host.",
        "We integrate with Datadog, New Relic and CloudWatch out of the box, but not with "
        "Alertmanager, which needs a custom webhook relay on your side.",
    ),
    "saml": (
        "Sign-in is by email and password with two-factor authentication, or with a Google "
        "account; SAML is not supported.",
        "Single sign-on through SAML is on the roadmap for our enterprise tier and expected "
        "next year; today users sign in with Google or GitHub accounts.",
        "We offer sign-in with Google Workspace only; SAML federation with other identity "
        "providers is planned.",
    ),
    "eu": (
        "All incident data is stored in our US data centers in Virginia and Oregon; we have no "
        "EU region today.",
        "Data is hosted in the United States, and an EU region is planned but has no date yet.",
        "We can sign the EU standard contractual clauses, but the data itself is stored in the "
        "US and cannot be moved.",
    ),
    "slack": ("A Slack integration is not available; notifications can go to email instead.",),
    "mobile": ("There is no mobile app; the web interface works well in a phone's browser.",),
    "status": (
        "We do not offer a public status page, but incidents can be exported to the status "
        "page tool you already use.",
    ),
}
_INTRO = {
    "beacon": "Beacon has been building incident response software since 2014 and today handles "
    "paging for more than 3,000 engineering teams, from ten-person startups to public companies. "
    "This proposal answers the requirements you shared and describes how Beacon would fit your "
    "three rotations. Our goal is simple: the right person knows about a problem within a "
    "minute, and everyone else keeps sleeping.",
    "klaxon": "Thank you for inviting Klaxon to respond. Klaxon is a focused, fast-growing "
    "alerting platform used by around 900 companies, and we are proud of our reliability "
    "record: 99.99 percent delivery uptime over the last three years. Below we go through your "
    "requirements one by one and explain how our product and our team would support your "
    "engineers from the first week.",
    "nightwatch": "Nightwatch is an on-call and incident management platform built by former "
    "site reliability engineers who were tired of being woken up by noisy alerts. We serve "
    "about 1,500 customers in thirty countries. This document summarises how Nightwatch meets "
    "the needs you described, what a rollout would look like, and what it would cost.",
}
_ROLLOUT = (
    "Onboarding takes about two weeks: we import your schedules and escalation rules, run a "
    "test page for every responder, and hold two training sessions. Support is available around "
    "the clock by chat and email, and larger customers get a named success manager.",
    "A typical rollout takes ten working days. Our solutions engineer migrates your existing "
    "rotations, helps you tune alert routing so that noisy alerts stay out of people's nights, "
    "and reviews the setup with you after the first month.",
    "We suggest a two-week pilot with one rotation before moving the others over. During the "
    "pilot our support engineers work in a shared channel with yours and answer within an "
    "hour, day or night.",
)
_RELIABILITY = (
    "Notifications go out through two independent delivery providers in separate regions, and "
    "we fail over between them automatically. Our own monitoring runs on a different cloud from "
    "the product, so an outage on our side cannot hide itself from us.",
    "Reliability is the whole product for us. Delivery runs active-active across three regions, "
    "every release goes through a canary stage, and we publish a monthly report of delivery "
    "times measured from alert to first notification.",
    "We measure the time from an alert arriving to the first notification leaving our system "
    "for every single page, and the 99th percentile has stayed under eight seconds for two "
    "years. Incidents on our side are reviewed openly within five working days.",
)
_PRICE = (
    "Pricing is ${p} per user per month, billed annually, with no charge for stakeholders who "
    "receive updates.",
    "For forty responders the price would be ${p} per user per month on an annual contract.",
    "Our quote is ${p} per user per month, which includes unlimited integrations and API calls.",
)
_CLOSING = (
    "We would be glad to set up a trial account and walk your team through it.",
    "Thank you for considering us; we look forward to your questions.",
    "We hope this answers your questions and would welcome a call to discuss next steps.",
)


class Requirements(BaseModel):
    """The team's requirements for the purchase, as they wrote them."""

    model_config = ConfigDict(frozen=True)
    title: str
    text: str = Field(description="The requirements in prose.")


class Proposal(BaseModel):
    """One vendor's proposal, as the vendor wrote it."""

    model_config = ConfigDict(frozen=True)
    vendor: str = Field(description="The vendor's name.")
    text: str = Field(description="The proposal in prose, pricing included.")


@dataclass(frozen=True)
class Offer:
    """What a proposal says, as facts: the prose is written from these."""

    vendor: VendorId
    price: int
    """USD per user per month."""
    misses: str | None
    """The must-have it does not meet, if any."""
    nice: frozenset[str]
    text: str = ""


def _write(k: int, phrasing: dict[str, list[int]], offer: Offer) -> str:
    """The proposal's prose: phrasing ``phrasing[part][k]`` of each part, so that no two
    proposals say the same thing in the same words."""
    name = VENDORS[offer.vendor]

    def say(topic: str, met: bool) -> str:
        pool = (_MET if met else _UNMET)[topic]
        return pool[phrasing[topic][k] % len(pool)].format(v=name)

    m = {topic: say(topic, topic != offer.misses) for topic in MUST_HAVES}
    n = {topic: say(topic, topic in offer.nice) for topic in NICE}
    price = _PRICE[phrasing["price"][k]].format(p=offer.price)
    paragraphs = [
        _INTRO[offer.vendor],
        f"{m['voice']} Every page, acknowledgement and escalation is recorded on the incident "
        "timeline, so the review after an incident starts from facts.",
        _RELIABILITY[phrasing["reliability"][k]],
        f"{m['alertmanager']} {n['slack']}",
        f"{m['saml']} {m['eu']} Access to production systems on our side is logged and reviewed "
        "every quarter, and we publish our latest SOC 2 Type II report on request.",
        f"{n['mobile']} {n['status']}",
        _ROLLOUT[phrasing["rollout"][k]],
        f"{price} {_CLOSING[phrasing['closing'][k]]}",
    ]
    return "\n\n".join(paragraphs)


def _build(seed: int) -> dict[VendorId, Offer]:
    rng = random.Random(seed)
    vendors: list[VendorId] = list(VENDORS)
    rng.shuffle(vendors)
    complete, cheap, other = vendors
    cheap_misses, other_misses = rng.sample(sorted(MUST_HAVES), 2)
    plans = [
        Offer(complete, rng.randint(19, 23), None, frozenset(rng.sample(NICE, 2))),
        Offer(cheap, rng.randint(11, 14), cheap_misses, frozenset(NICE)),  # tempting: extras
        Offer(other, rng.randint(15, 18), other_misses, frozenset(rng.sample(NICE, 1))),
    ]
    parts = [*MUST_HAVES, *NICE, "reliability", "price", "rollout", "closing"]
    phrasing = {part: rng.sample(range(3), 3) for part in parts}
    written = {o.vendor: replace(o, text=_write(k, phrasing, o)) for k, o in enumerate(plans)}
    return {v: written[v] for v in VENDORS}


@functools.cache
def offers(seed: int = SEED) -> dict[VendorId, Offer]:
    """The three proposals of one seed, by vendor id."""
    return _build(seed)


def make_tools(latency: float = 0.0) -> list[Callable[..., Awaitable[object]]]:
    """The procurement folder's two async tools; `latency` simulates a remote API per call."""
    proposals = offers()

    async def get_requirements() -> Requirements:
        """Read the platform team's requirements for the on-call paging tool."""
        await asyncio.sleep(latency)
        return Requirements(title="On-call paging: what we need", text=REQUIREMENTS)

    async def get_proposal(vendor: VendorId) -> Proposal:
        """Read one vendor's proposal for the on-call paging tool, in full.

        Args:
            vendor: The vendor whose proposal to read.
        """
        await asyncio.sleep(latency)
        return Proposal(vendor=VENDORS[vendor], text=proposals[vendor].text)

    return [get_requirements, get_proposal]


def expected() -> Offer:
    """The proposal to pick: the cheapest of those that meet every must-have."""
    return min((o for o in offers().values() if o.misses is None), key=lambda o: o.price)


_VENDORS = answers.finder({v: (name,) for v, name in VENDORS.items()})
_PICK = answers.cues(
    r"\b(?:recommend\w*|pick|choose|chose|choice|go with|going with|select\w*|winner)\b",
    r"\bbest (?:choice|pick|option|fit|bet|vendor|proposal|overall)\b",
)
_NOT = answers.cues(r"\bnot\b|n't\b|\bnever\b|\bno\b")
_RULED_OUT = answers.cues(
    answers.RULED_OUT, r"\bnot\b|n't\b|\bno\b|\bmiss\w*|\black\w*|\bfails?\b|\bwithout\b"
)


def picked(answer: str) -> list[VendorId]:
    """The vendors an answer picks: named with "I recommend", "pick", "go with", "the best
    choice"..., unless set aside ("over X", "not X") or the cue is denied ("I would not pick X");
    with no such cue, those its first statement names without ruling them out ("Klaxon. It meets
    every must-have; Beacon does not.")."""
    found = answers.picks(answer, _VENDORS, _PICK, _NOT, every=True)
    found = found or answers.first_claims(answer, _VENDORS, _RULED_OUT)
    return [v for v in VENDORS if v in {p.key for p in found}]


def check(answer: str) -> Verdict:
    """Right when exactly one vendor is picked and it is the one that meets every must-have."""
    chosen = picked(answer)
    if not chosen:
        return Verdict.wrong("no vendor is picked")
    if len(chosen) > 1:
        return Verdict.wrong(f"picks more than one vendor: {', '.join(VENDORS[v] for v in chosen)}")
    offer, right = offers()[chosen[0]], expected()
    if offer.vendor == right.vendor:
        return Verdict.right()
    cheapest = min(offers().values(), key=lambda o: o.price)
    who = f"{VENDORS[offer.vendor]} (${offer.price} per user per month)"
    if offer.vendor == cheapest.vendor:
        who += " is the cheapest but"
    missed = MUST_HAVES.get(offer.misses or "", "none")
    return Verdict.wrong(
        f"{who} misses a must-have: {missed}; {VENDORS[right.vendor]} meets every one"
    )


SCENARIO = Scenario(
    name="judgment",
    title="Judgment calls",
    stresses=(
        "where PTC does not pay: four calls of prose (~1,250 words) that the model must read "
        "whole to judge, so a program only adds its own tokens"
    ),
    question=QUESTION,
    make_tools=make_tools,
    check=check,
    brain=judgment_brain,
    ptc_pays=False,
)
