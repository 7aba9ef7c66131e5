"""What becomes of one email: the emailId ladder (Ack 0/1/2), the replies and where they go,
and what a refusal does — decided from values, written by the store's writer.

The emailId claim is the one step the core cannot take: it is a database act, exact across
replicas. So the writer asks `claim_for` which emailId to claim (only an authorised email
with a valid emailId claims one), claims it, and hands whether it won to `decide`:

    email_id = claim_for(inbound, account)
    claimed = email_id is not None and <insert (account, email_id) unless it exists>
    outcome = decide(inbound, account, claimed=claimed, faults=..., rate_budget=..., ...)

The ladder, in order (SPEC §4, §10):
- not processable (no text/plain body)          → not_processed, no reply;
- keyid empty / unknown, domain, IP (1, 3, 30, 14) → refused, no reply to anyone;
- emailId missing or not numeric                → refused, Ack 2, nothing sent;
- emailId already claimed for the account       → duplicate, Ack 1, nothing sent;
- a whole-request refusal (23, 102)             → processed, Ack 0 and a single-form Not
                                                  with that code and an empty tel;
- otherwise each recipient is judged (rules.decide) → processed, Ack 0 and the Not.
An Ack or Not goes only where the request named one plain address; any other value is a
warning on the email, not a reply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from gateway.core import codes, replies, rules
from gateway.core.model import (
    Account,
    EmailStatus,
    Fault,
    HttpCall,
    Inbound,
    Intake,
    ReplyKind,
    Request,
    Result,
    RuleSettings,
    Sms,
)

_NONE_USED: Mapping[int, int] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Reply:
    """An Ack or Not to queue: its kind, the one plain address it goes to, its XML body
    (`content`: an Ack's text, a Not report not rendered yet)."""

    kind: ReplyKind
    to: str
    content: str | replies.NotReport

    @property
    def body(self) -> str:
        content = self.content
        return content if isinstance(content, str) else content.body


@dataclass(frozen=True, slots=True)
class Outcome:
    """Everything one email causes; the writer stores it as it is."""

    status: EmailStatus
    reason: str = ""
    code: int | None = None  # the refusal (1, 3, 14, 30) or the whole-request code (23, 102)
    keyid: str | None = None  # as given, trimmed and cut to 64; None when absent
    account_id: int | None = None  # the keyid's account, authorised or not
    email_id: str | None = None  # as given once authorised, trimmed and cut to 64
    results: tuple[Result, ...] = ()  # one per recipient (one with tel "" for 23/102)
    warnings: tuple[str, ...] = ()
    replies: tuple[Reply, ...] = ()
    tracker: str = ""  # stored on every SMS
    debit: int = 0  # SMS parts taken from the account's credit
    # fault id -> how many recipients it forced
    faults_used: Mapping[int, int] = field(default_factory=lambda: _NONE_USED)

    @property
    def sms(self) -> tuple[Sms, ...]:
        return tuple(r.sms for r in self.results if r.sms is not None)


def account_key(item: Intake) -> str:
    """The keyid whose account the writer reads for this email or call ("" when none)."""
    return item.request.keyid.strip() if item.request is not None else ""


def authorised(inbound: Inbound, account: Account | None) -> bool:
    """Whether the email's sender may send (keyid, domains, IP): asked before its attachments
    are decoded, and again by the writer in its transaction."""
    return inbound.request is not None and _refusal(inbound, inbound.request, account) is None


def sender(inbound: Inbound) -> tuple[str, str, str, str]:
    """What `authorised` reads of an email besides the account: its keyid, From, envelope
    sender and client IP (two emails alike in these are authorised alike)."""
    keyid = account_key(inbound)
    return keyid, inbound.content.from_address, inbound.envelope_from, inbound.client_ip


def claim_for(inbound: Inbound, account: Account | None) -> str | None:
    """The emailId the writer must claim for `account` before `decide`, or None: only an
    authorised email with a valid emailId claims one."""
    if inbound.request is None or _refusal(inbound, inbound.request, account) is not None:
        return None
    email_id = inbound.request.email_id.strip()
    return email_id if rules.valid_email_id(email_id) else None


def decide(
    inbound: Inbound,
    account: Account | None,
    *,
    claimed: bool,
    now: datetime,
    settings: RuleSettings,
    faults: Sequence[Fault] = (),
    rate_budget: int | None = None,
) -> Outcome:
    """The outcome of one email; `claimed` says whether the writer won the emailId that
    `claim_for` named (ignored when it named none)."""
    content, request = inbound.content, inbound.request
    if request is None:
        return Outcome(EmailStatus.NOT_PROCESSED, reason=content.reason)
    keyid = request.keyid.strip()[:64] or None
    account_id = account.id if account is not None else None
    refusal = _refusal(inbound, request, account)
    if refusal is not None or account is None:
        code = refusal if refusal is not None else codes.BAD_CREDENTIALS
        return Outcome(
            EmailStatus.REFUSED,
            reason=f"{code}: {codes.message(code)}; no reply",
            code=code,
            keyid=keyid,
            account_id=account_id,
        )
    email_id = request.email_id.strip()
    stored_id = email_id[:64] or None
    warnings = list(request.notes)

    def unsent(status: EmailStatus, reason: str, ack: str) -> Outcome:
        """An authorised email that sends nothing: only its Ack goes back."""
        return Outcome(
            status,
            reason=reason,
            replies=_replies(request, warnings, ack=ack, report=None),
            warnings=tuple(warnings),
            keyid=keyid,
            account_id=account_id,
            email_id=stored_id,
        )

    if not rules.valid_email_id(email_id):
        return unsent(
            EmailStatus.REFUSED,
            "emailId missing or not numeric: Ack 2, nothing sent",
            replies.ack(stored_id, codes.ACK_MISSING_ID),
        )
    if not claimed:
        return unsent(
            EmailStatus.DUPLICATE,
            "emailId already processed: Ack 1, nothing sent",
            replies.ack(email_id, codes.ACK_DUPLICATE),
        )
    ack = replies.ack(email_id, codes.ACK_PROCESSED)
    if request.refusal is not None:
        code = request.refusal
        report = replies.NotReport(email_id, (("", code),), numbered=False)
        return Outcome(
            EmailStatus.PROCESSED,
            reason=f"request refused: {code}",
            code=code,
            results=(Result(tel="", code=code),),
            replies=_replies(request, warnings, ack=ack, report=report),
            warnings=tuple(warnings),
            keyid=keyid,
            account_id=account_id,
            email_id=stored_id,
        )
    decision = rules.decide(request, account, now, settings, faults=faults, rate_budget=rate_budget)
    warnings = list(decision.warnings)
    report = replies.NotReport(
        email_id, tuple([(r.tel, r.code) for r in decision.results]), numbered=request.numbered
    )
    return Outcome(
        EmailStatus.PROCESSED,
        results=decision.results,
        replies=_replies(request, warnings, ack=ack, report=report),
        warnings=tuple(warnings),
        tracker=decision.tracker,
        debit=decision.debit,
        faults_used=decision.faults_used,
        keyid=keyid,
        account_id=account_id,
        email_id=stored_id,
    )


def decide_call(
    call: HttpCall,
    account: Account | None,
    *,
    now: datetime,
    settings: RuleSettings,
    faults: Sequence[Fault] = (),
    rate_budget: int | None = None,
) -> Outcome:
    """The outcome of one HTTP API send: authorised by the keyid and the client's IP (1, 3,
    14: refused, nothing sent, the channel answers a general error), then each number judged
    by the same rules as mail. No emailId, no replies: the HTTP answer is the report."""
    request = call.request
    keyid = request.keyid.strip()
    refusal = rules.authorise_key(keyid, account, client_ip=call.client_ip)
    if refusal is not None or account is None:
        code = refusal if refusal is not None else codes.BAD_CREDENTIALS
        return Outcome(EmailStatus.REFUSED, reason=codes.message(code), code=code)
    decision = rules.decide(request, account, now, settings, faults=faults, rate_budget=rate_budget)
    return Outcome(
        EmailStatus.PROCESSED,
        results=decision.results,
        warnings=decision.warnings,
        tracker=decision.tracker,
        debit=decision.debit,
        faults_used=decision.faults_used,
        keyid=keyid[:64],
        account_id=account.id,
    )


def _refusal(inbound: Inbound, request: Request, account: Account | None) -> int | None:
    return rules.authorise(
        request.keyid.strip(),
        account,
        from_address=inbound.content.from_address,
        envelope_from=inbound.envelope_from,
        client_ip=inbound.client_ip,
    )


def _replies(
    request: Request, warnings: list[str], *, ack: str, report: replies.NotReport | None
) -> tuple[Reply, ...]:
    """The replies to queue; a bad address is a warning (appended), not a reply."""
    queued: list[Reply] = []
    content: str | replies.NotReport | None
    for kind, given, content in (
        (ReplyKind.ACK, request.email_ack, ack),
        (ReplyKind.NOT, request.email_not, report),
    ):
        if content is None or not given.strip():
            continue
        address = replies.reply_address(given)
        if address is None:
            warnings.append(
                f"email{kind.value.capitalize()} {given[:80]!r} is not one plain address: "
                "no reply sent there"
            )
            continue
        queued.append(Reply(kind, address, content))
    return tuple(queued)
