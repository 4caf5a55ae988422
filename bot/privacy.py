"""The client's privacy: opting out of every message, and being forgotten."""

from __future__ import annotations

from bot.departures import Change, Departures
from storage.records import OPEN, AuditEvent, Channel, Departure, InterviewData, Status

# What "forget" keeps: enough for anonymous counts, nothing about anyone.
ANONYMOUS_ROLES = ("reason", "fixable", "revenue", "workload")


class Privacy:
    def __init__(self, departures: Departures) -> None:
        self.departures = departures

    def opt_out(self, record: Departure, *, actor: str) -> Departure:
        self.departures.access.require(record, actor)
        return self._opt_out(record, actor)

    def opt_out_by_client(self, record: Departure, *, via: str) -> Departure:
        """The client's own unsubscribe (a signed link): no team member's access is involved."""
        return self._opt_out(record, via)

    def _opt_out(self, record: Departure, actor: str) -> Departure:
        if not record["opted_out"]:
            record["opted_out"] = True
            self.departures.note(record, {"at": self.departures.now(), "by": actor, "event": AuditEvent.OPT_OUT})
            self.departures.commit(record, Change.OPT_OUT)
        return record

    def forget(self, record: Departure, *, actor: str) -> Departure:
        """Erase the client's personal data and the answers, in any state; keep anonymous counts.

        An open departure is closed as departed, so that nobody is asked about it
        again and its revenue counts as lost, not at stake. Every pending touch is
        cancelled (by the playbook, on this change) and no touch keeps an address.
        """
        departures = self.departures
        departures.access.require(record, actor)
        now = departures.now()
        state = departures.state(record)
        kept: InterviewData = {"answers": {}, "trail": [], "parked": [], "editing": None}
        for role in ANONYMOUS_ROLES:
            question = departures.prompts.script.by_role(role)
            if question is not None and question.id in state.answers:
                answer = state.answers[question.id]
                kept["answers"][question.id] = {"value": answer.get("value"), "display": answer.get("display", ""),
                                                "skipped": answer.get("skipped", False)}  # fmt: skip
                kept["trail"].append(question.id)
        if record["status"] in OPEN:
            departures.move(record, Status.DEPARTED, actor, now, note=None)
        history = [h for h in record["history"] if h["event"] == AuditEvent.STATUS]
        for entry in history:
            entry.pop("note", None)
        history.append({"at": now, "by": actor, "event": AuditEvent.FORGOTTEN})
        record["client"] = f"Forgotten client #{record['id']}"
        record["client_key"] = ""  # found by no name any more
        record["context"] = None
        record["interview"] = kept
        record["history"] = history
        record["opted_out"] = True
        record["forgotten"] = True
        record["updated_at"] = now
        # the client's own words (the exit note's form) go with everything else personal
        for field in ("am_email", "am_name", "prompt", "bounced", "paid_at", "email_approval", "client_voice",
                      "exit_note_sent_at", "items"):  # fmt: skip
            record.pop(field, None)  # type: ignore[misc]  # each is an optional field
        with departures.store.batch():
            for touch in departures.store.find_touches(departure_id=record["id"]):
                if touch["channel"] is Channel.EMAIL and touch["recipient"]:
                    touch["recipient"] = ""
                    touch.pop("detail", None)  # an outbox path or a server reply may name the address
                    departures.store.save_touch(touch)
            departures.commit(record, Change.FORGET)
        return record
