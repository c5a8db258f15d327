"""The contract of a notifier (通知渠道): how the gateway tells people of events.

Events worth a person's attention (a single-sided case opened, refunded or resolved,
an approval waiting, a refund its business system did not record) are queued as *notices* in the transaction-safe outbox and
delivered by the configured notifier instances, each subscribed to some events and
audiences (``staff``: the hospital's finance staff and cashiers; ``patient``: the
person who paid). A notifier plugin ships a subclass registered with
``register.add_notifier(cls)``; the gateway ships a signed webhook notifier
(``plugins/notifiers/webhook``) that an SMS platform, a WeChat Work robot bridge or
any hospital system can receive.

Rules: ``send`` delivers one notice or raises (any exception is a failed attempt,
retried with backoff); it must be idempotent for the same ``notice.id`` because an
attempt whose answer was lost is retried. Personal data in ``notice.payload`` is
masked unless the instance's configuration sets ``include_personal_data``.
"""
from __future__ import annotations

import abc
from typing import Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict

# Events the core emits, with their Chinese titles for messages people read.
EVENTS: dict[str, str] = {
    "single_sided.opened": "出现单边账(已支付未入账)",
    "single_sided.refunding": "单边账退款处理中",
    "single_sided.resolved": "单边账已处理",
    "refund_writeback.failed": "退费回写HIS失败(已退款, HIS未登记)",
    "approval.requested": "有待审核的申请",
    "approval.decided": "审核已完成",
    "recon.differences": "对账发现新差异",
    "recon.incomplete": "对账数据不全(账单获取失败)",
}
AUDIENCES = ("staff", "patient")


class NoticeMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: int
    event: str
    audience: str
    title: str  # Chinese, for people
    text: str  # Chinese sentence describing the event
    payload: dict[str, Any]


class Notifier(abc.ABC):
    id: ClassVar[str]
    name_zh: ClassVar[str]
    name_en: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, config: BaseModel, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.session = session

    @abc.abstractmethod
    async def send(self, notice: NoticeMessage) -> None:
        """Deliver one notice; raise on failure."""
