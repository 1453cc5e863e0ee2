from __future__ import annotations
from typing import Any
from tests.web.deskkit import browser, desk, report  # noqa: F401

async def test_smoke(app: Any, org: dict[str, int], browser: Any) -> None:
    number = await report(app, unit_path="物业服务中心/保安部/一班", reporter=org["张伟"], description="灭火器压力不足")
    liu = await browser()
    await liu.sign_in(org["刘强"])
    for path in ["/", "/hazards", f"/hazards/{number}", "/checks", "/wall", "/hazards.xlsx", "/hazards?q=灭火器&status=active"]:
        r = await liu.get(path)
        text = await r.text() if "xlsx" not in path else ""
        print(path, r.status, r.headers.get("Server-Timing"), len(text))
        assert r.status == 200, text[:3000]
