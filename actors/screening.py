"""The list-based sanctions screener (engine.sanctions.Screener): a parsed SDN-style list,
matched in memory. A vendor's screening API would implement the same port."""

from __future__ import annotations

from engine import sanctions
from engine.destinations import Destination


class ListScreener:
    def __init__(self, listed: sanctions.SanctionsList) -> None:
        self.listed = listed

    async def screen(
        self, stage: sanctions.Stage, sender: str, beneficiary: Destination
    ) -> sanctions.Screening:
        return sanctions.screen(self.listed, stage, sender, beneficiary)
