"""The read-only web view for auditors and administrators.

Pages: the chain's status (records, signed checkpoints, the first problem), a search of audit
events (kind, party code, dates), one student's trail (each look recorded), and the outbox per
state with its dead letters. HTML made here with every value escaped; no JavaScript, nothing from
a CDN (deployments have no internet). Nothing on a page can change data, with one exception for
administrators: signing a checkpoint now. Auditors get 403 there.

Personal data: pages show pseudonyms, ids, codes and counts; no personal number is ever shown
(the trail is asked by school and leerlingid, never by a number in a URL).

`create_app(env)` does no I/O: the hub is opened on the first request, so importing the
Airflow plugin that mounts this app touches no database at parse time.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Annotated

from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import func, or_, select

from overstap.audit.chain import AuditEvent, timestamp
from overstap.bootstrap import HubContext
from overstap.store.audit_log import AuditLog, fixed_clock
from overstap.store.tables import audit_checkpoint, audit_event, outbox, student
from overstap.web.accounts import Account, Accounts, Sessions

COOKIE = "overstap_session"
_CSS = """body{font-family:sans-serif;margin:2rem;max-width:80rem}table{border-collapse:collapse}
td,th{border:1px solid #bbb;padding:.2rem .5rem;font-size:.9rem;text-align:left}
nav a{margin-right:1rem}.bad{color:#a00;font-weight:bold}.ok{color:#070;font-weight:bold}"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


class _Hub:
    """The hub's context, opened on first use and kept for the app's life."""

    def __init__(self, env: Mapping[str, str] | None) -> None:
        self._env = env

    @cached_property
    def ctx(self) -> HubContext:
        return HubContext.open(dict(self._env) if self._env is not None else None)

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(self.ctx.settings.home / "web-users.json")

    @cached_property
    def sessions(self) -> Sessions:
        return Sessions(self.ctx.settings.home / "web-session.key")


def _page(title: str, body: str, account: Account | None = None) -> HTMLResponse:
    nav = ""
    if account is not None:
        nav = (
            '<nav><a href="./">status</a><a href="events">events</a><a href="trail">trail</a>'
            f'<a href="outbox">outbox</a><a href="logout">log out ({_e(account.name)}, '
            f"{_e(account.role)})</a></nav>"
        )
    return HTMLResponse(
        f'<!doctype html><html lang="nl"><head><meta charset="utf-8"><title>{_e(title)} - '
        f"Overstap</title><style>{_CSS}</style></head><body>{nav}<h1>{_e(title)}</h1>{body}"
        "</body></html>",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{_e(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{th}</tr>{trs}</table>"


def _account_of(request: Request) -> Account:
    """The logged-in account, or a redirect to the login page (no session, expired, changed)."""
    hub: _Hub = request.app.state.hub
    account = hub.sessions.read(request.cookies.get(COOKIE))
    if account is None:
        raise HTTPException(status_code=303, headers={"Location": "login"})
    return account


# Module level: FastAPI resolves the (string) annotations of the routes in this module's names.
User = Annotated[Account, Depends(_account_of)]


def create_app(env: Mapping[str, str] | None = None, *, secure_cookies: bool = False) -> FastAPI:
    """The app; `secure_cookies` marks the session cookie Secure (set it behind HTTPS)."""
    hub = _Hub(env)
    app = FastAPI(title="Overstap audit", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.hub = hub

    @app.get("/login")
    def login_form(failed: int = 0) -> HTMLResponse:
        note = '<p class="bad">Wrong name or password.</p>' if failed else ""
        return _page(
            "Log in",
            f'{note}<form method="post" action="login"><label>Name <input name="name" '
            'autocomplete="username"></label> <label>Password <input name="password" '
            'type="password" autocomplete="current-password"></label> '
            '<button type="submit">Log in</button></form>',
        )

    @app.post("/login")
    def login(name: Annotated[str, Form()], password: Annotated[str, Form()]) -> Response:
        account = hub.accounts.check(name, password)
        if account is None:
            return RedirectResponse("login?failed=1", status_code=303)
        _audit(hub.ctx, account, "web.login", "session", account.name)
        response = RedirectResponse("./", status_code=303)
        response.set_cookie(
            COOKIE, hub.sessions.issue(account), max_age=hub.sessions.seconds,
            httponly=True, samesite="strict", secure=secure_cookies,
        )  # fmt: skip
        return response

    @app.get("/logout")
    def logout() -> Response:
        response = RedirectResponse("login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/")
    def status(account: User) -> HTMLResponse:
        from overstap.crypto.trust import TrustStore
        from overstap.pki import PkiLayout
        from overstap.services.audit_checkpoints import verify_with_checkpoints
        from overstap.services.pki import hub_party

        ctx = hub.ctx
        bundle = PkiLayout(ctx.settings.pki_dir).trust_bundle_path
        if bundle.exists():
            result = verify_with_checkpoints(ctx, TrustStore.from_pem_file(bundle), hub_party().oin)
            report, problem, signed = result.chain, result.problem, result.checkpoints
        else:
            with ctx.engine.connect().execution_options(read_only=True) as conn:
                report = AuditLog(conn).verify()
            problem, signed = report.problem, 0
        with ctx.engine.connect().execution_options(read_only=True) as conn:
            last = conn.execute(
                select(audit_checkpoint.c.seq, audit_checkpoint.c.at)
                .order_by(audit_checkpoint.c.seq.desc())
                .limit(1)
            ).first()
        verdict = (
            f'<p class="ok">Audit chain OK: {report.count} records, {signed} signed checkpoints.</p>'
            if problem is None
            else f'<p class="bad">Audit chain BROKEN at record {problem.seq}: {_e(problem.reason)}</p>'
        )
        latest = f"<p>Last checkpoint: record {last.seq} at {_e(last.at)}.</p>" if last else ""
        action = (
            '<form method="post" action="checkpoint"><button type="submit">Sign a checkpoint '
            "now</button></form>"
            if account.role == "admin"
            else ""
        )
        return _page("Audit chain", verdict + latest + action, account)

    @app.post("/checkpoint")
    def checkpoint(account: User) -> Response:
        if account.role != "admin":
            raise HTTPException(status_code=403, detail="auditors cannot change anything")
        import os

        from overstap.pki.devca import passphrase_from
        from overstap.services.audit_checkpoints import make_checkpoint
        from overstap.services.pki import hub_signer

        pki_dir = hub.ctx.settings.pki_dir
        make_checkpoint(hub.ctx, hub_signer(pki_dir, passphrase_from(pki_dir, os.environ)))
        return RedirectResponse("./", status_code=303)

    @app.get("/events")
    def events(
        account: User,
        kind: str = "",
        party: str = "",
        from_: Annotated[str, Query(alias="from")] = "",
        to: str = "",
    ) -> HTMLResponse:
        query = select(audit_event).order_by(audit_event.c.seq.desc()).limit(200)
        if kind.strip():
            query = query.where(audit_event.c.action.startswith(kind.strip(), autoescape=True))
        code = party.strip().upper()
        if code:  # a school location or BRIN, an institution BRIN, a municipality code
            query = query.where(
                or_(
                    audit_event.c.object_ref.startswith(code, autoescape=True),
                    audit_event.c.origin.contains(code, autoescape=True),
                    audit_event.c.detail.contains(code, autoescape=True),
                )
            )
        try:
            if from_:
                start = datetime.combine(date.fromisoformat(from_), time(), tzinfo=UTC)
                query = query.where(audit_event.c.at >= timestamp(start))
            if to:
                end = datetime.combine(
                    date.fromisoformat(to) + timedelta(days=1), time(), tzinfo=UTC
                )
                query = query.where(audit_event.c.at < timestamp(end))
        except ValueError:
            raise HTTPException(status_code=400, detail="dates are YYYY-MM-DD") from None
        with hub.ctx.engine.connect().execution_options(read_only=True) as conn:
            rows = conn.execute(query).all()
        form = (
            '<form method="get" action="events"><label>Kind <input name="kind" value="'
            f'{_e(kind)}" placeholder="signal."></label> <label>School, institution or '
            f'municipality <input name="party" value="{_e(party)}"></label> <label>From '
            f'<input name="from" type="date" value="{_e(from_)}"></label> <label>To <input '
            f'name="to" type="date" value="{_e(to)}"></label> <button type="submit">Search'
            "</button></form>"
        )
        table = _table(
            ["seq", "time (UTC)", "actor", "action", "object", "result", "origin", "detail"],
            [(r.seq, r.at[:19].replace("T", " "), r.actor, r.action,
              f"{r.object_kind} {r.object_ref}", r.result, r.origin, r.detail[:160])
             for r in rows],
        )  # fmt: skip
        return _page(
            "Audit events",
            f"{form}<p>{len(rows)} shown (newest first, at most 200)</p>{table}",
            account,
        )

    @app.get("/trail")
    def trail(account: User, school: str = "", leerlingid: str = "") -> HTMLResponse:
        from overstap.services.audit_trail import view_trail

        form = (
            '<form method="get" action="trail"><label>School location <input name="school" '
            f'value="{_e(school)}"></label> <label>Leerlingid <input name="leerlingid" '
            f'value="{_e(leerlingid)}"></label> <button type="submit">Show trail</button></form>'
        )
        if not (school and leerlingid):
            return _page("Student trail", form, account)
        with hub.ctx.engine.connect().execution_options(read_only=True) as conn:
            subject = conn.execute(
                select(student.c.subject_key).where(
                    student.c.school == school.strip().upper(),
                    student.c.leerlingid == leerlingid.strip(),
                )
            ).scalar_one_or_none()
        if subject is None:
            return _page("Student trail", form + '<p class="bad">No such student.</p>', account)
        found = view_trail(hub.ctx, subject, viewer=account.name, origin="web")
        table = _table(
            ["seq", "time (UTC)", "action", "object", "result", "origin"],
            [(r.seq, r.at[:19].replace("T", " "), r.action, f"{r.object_kind} {r.object_ref}",
              r.result, r.origin) for r in found.records],
        )  # fmt: skip
        return _page(
            "Student trail",
            f"{form}<p>{_e(subject)}: {len(found.records)} records; this look is recorded.</p>"
            + table,
            account,
        )

    @app.get("/outbox")
    def outbox_view(account: User) -> HTMLResponse:
        with hub.ctx.engine.connect().execution_options(read_only=True) as conn:
            per_state = conn.execute(
                select(outbox.c.state, outbox.c.kind, func.count())
                .group_by(outbox.c.state, outbox.c.kind)
                .order_by(outbox.c.state, outbox.c.kind)
            ).all()
            dead = conn.execute(
                select(outbox.c.message_id, outbox.c.kind, outbox.c.recipient, outbox.c.attempts,
                       outbox.c.last_error)
                .where(outbox.c.state == "dead_letter")
                .order_by(outbox.c.updated_at.desc())
                .limit(100)
            ).all()  # fmt: skip
        body = "<h2>Messages per state</h2>" + _table(["state", "kind", "count"], per_state)
        body += "<h2>Dead letters</h2>" + _table(
            ["MessageID", "kind", "recipient", "attempts", "last error"],
            [(d[0], d[1], d[2], d[3], (d[4] or "")[:200]) for d in dead],
        )
        return _page("Outbox", body, account)

    return app


def _audit(ctx: HubContext, account: Account, action: str, kind: str, ref: str) -> None:
    with ctx.engine.begin() as conn:
        AuditLog(conn, fixed_clock(datetime.now(UTC))).append(
            AuditEvent(
                f"person:{account.name}",
                action,
                kind,
                ref,
                origin="web",
                detail={"role": account.role},
            )
        )
