"""Recompute the hash chains of the audit trail and the access log, and say whether they
are intact: exit status 0 when they are, 1 at the first broken or missing link."""
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError

from exchanges import chain


class Command(BaseCommand):
    help = (
        "Check that the audit trail and the access log are intact: every sealed entry in place, "
        "unchanged and linked to the one before, the last one equal to the recorded head. Prints each "
        "chain's head (chain:position:hash) to keep outside the database; exits 1 on any problem."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--expect-head", action="append", default=[], metavar="CHAIN:SEQ:HASH",
            help="A head printed by an earlier run (repeatable): the chain must still pass through it.",
        )
        parser.add_argument(
            "--stale-minutes", type=int, default=int(chain.STALE_AFTER.total_seconds() // 60),
            help="Entries unsealed for longer than this are a problem (default %(default)s).",
        )
        parser.add_argument("--seal", action="store_true", help="Seal what has committed first, then verify.")

    def handle(self, *args, **options):
        anchors = {}
        for text in options["expect_head"]:
            try:
                expected, seq, digest = chain.parse_anchor(text)
            except ValueError:
                raise CommandError(f"--expect-head {text!r} is not CHAIN:SEQ:HASH (CHAIN: audit or access).") from None
            anchors.setdefault(expected.name, []).append((seq, digest))
        if options["seal"]:
            try:
                sealed = chain.seal_all()
            except chain.ChainBroken as error:
                self.stdout.write(f"Not sealing: {error}")
            else:
                self.stdout.write("Sealed " + ", ".join(f"{count} {name}" for name, count in sealed.items()) + " entries.")
        broken = []
        for each in chain.CHAINS:
            verdict = chain.verify(each, anchors=anchors.get(each.name, ()), stale_after=timedelta(minutes=options["stale_minutes"]))
            if verdict.intact:
                waiting = f", {verdict.unsealed} waiting to be sealed" if verdict.unsealed else ""
                self.stdout.write(f"{each.label}: intact, {verdict.sealed} entries sealed{waiting}. Head: {verdict.head}")
            else:
                broken.append(each.label)
                self.stdout.write(f"{each.label}: NOT INTACT: {verdict.problem}")
        if broken:
            raise CommandError(f"The {' and the '.join(broken)} failed verification (see above).")
        self.stdout.write("Keep these heads outside the database; `verify_audit --expect-head HEAD` later proves the chain still passes through them.")
