"""The simulated insurance centre: envelope checks, sign-in, persons, visits, fees.

Settlement lives in :mod:`.sim_settle`, reconciliation in :mod:`.sim_recon`; the
three mix into :class:`InsuranceCentre`, whose :meth:`process` takes a decoded
envelope and returns the ``output`` or raises :class:`SimError`.
"""
from __future__ import annotations

import datetime as dt
import re
import secrets
from decimal import Decimal
from typing import Any

from gateway.money import MoneyFormatError, fen_to_yuan, yuan_to_fen

from .profiles import RegionProfile
from .sim_model import DEFAULT_CATALOGUE, CatalogueItem, JournalEntry, SimError, SimFee, SimInsurance, SimPerson, SimVisit
from .sim_policy import split_line
from .sim_recon import ReconMixin
from .sim_settle import SettleMixin
from .wire import CST, format_time, parse_time

MSGID_RE = re.compile(r"^(?P<code>[A-Za-z0-9]{12})(?P<time>\d{14})(?P<seq>\d{4})$")
NO_SIGN_IN = ("9001", "9002")
EC_TOKEN_TTL = dt.timedelta(minutes=10)


def default_persons(admvs: str) -> list[SimPerson]:
    return [
        SimPerson("43000000000000000001", "张三", "430102198001011234", insuplc_admdvs=admvs,
                  insurances=[SimInsurance("310", "11", admvs, employer="长沙某公司")], acct_balance=100_000,
                  wallet_balance=20_000, card_no="A43010001", card_sn="43010000K0000001", password="123456",
                  qr_code="EC-QR-ZHANGSAN"),
        SimPerson("43000000000000000002", "李四", "430102199002022345", gender="2", birthday=dt.date(1990, 2, 2),
                  insuplc_admdvs=admvs, insurances=[SimInsurance("390", "1501", admvs)], wallet_balance=5_000,
                  card_no="A43010002", card_sn="43010000K0000002", qr_code="EC-QR-LISI"),
        SimPerson("43000000000000000003", "王五", "430102197503033456", insuplc_admdvs=admvs,
                  insurances=[SimInsurance("310", "11", admvs, civil_servant=True)], acct_balance=50_000,
                  mulaid_balance=30_000, card_no="A43010003", card_sn="43010000K0000003", password="654321",
                  qr_code="EC-QR-WANGWU", medical_aid=True),
        SimPerson("43000000000000000004", "赵六", "430102194504044567", birthday=dt.date(1945, 4, 4),
                  insuplc_admdvs=admvs, insurances=[SimInsurance("340", "21", admvs)], acct_balance=200_000,
                  qr_code="EC-QR-ZHAOLIU"),
    ]


class InsuranceCentre(SettleMixin, ReconMixin):
    def __init__(self, *, fixmedins_code: str, mdtrtarea_admvs: str, profile: RegionProfile) -> None:
        self.fixmedins_code = fixmedins_code
        self.admvs = mdtrtarea_admvs
        self.profile = profile
        self.persons: dict[str, SimPerson] = {p.psn_no: p for p in default_persons(mdtrtarea_admvs)}
        self.catalogue: dict[str, CatalogueItem] = {c.code: c for c in DEFAULT_CATALOGUE}
        self.visits: dict[str, SimVisit] = {}
        self.sign_ins: dict[str, dt.datetime] = {}  # sign_no → expiry
        self.sign_in_ttl = dt.timedelta(hours=24)
        self.ec_tokens: dict[str, tuple[str, dt.datetime]] = {}
        self.journal: dict[str, JournalEntry] = {}
        self.seen_msgids: set[str] = set()
        self.calls: list[dict[str, Any]] = []  # every envelope processed, for inspection
        self.last_warn: str | None = None  # warn_msg of the call being answered
        self._counter = 0
        self._init_settle()
        self._init_recon()

    # --- helpers -------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self.now().astimezone(CST).strftime('%Y%m%d')}{self._counter:08d}"

    def person(self, psn_no: str, env: dict[str, Any] | None = None) -> SimPerson:
        person = self.persons.get(psn_no)
        if person is None:
            raise SimError(f"人员编号[{psn_no}]不存在")
        if env is not None and env.get("insuplc_admdvs") != person.insuplc_admdvs:
            raise SimError(f"参保地医保区划[{env.get('insuplc_admdvs')}]与人员参保地不符")
        return person

    def visit(self, mdtrt_id: str, psn_no: str, kind: str | None = None) -> SimVisit:
        visit = self.visits.get(str(mdtrt_id))
        if visit is None or visit.psn_no != psn_no:
            raise SimError(f"就诊ID[{mdtrt_id}]不存在")
        if kind and visit.kind != kind:
            raise SimError(f"就诊ID[{mdtrt_id}]不是{'门诊' if kind == 'outpatient' else '住院'}就诊")
        return visit

    @staticmethod
    def _fen(value: Any) -> int:
        try:
            return yuan_to_fen(value if not isinstance(value, float) else str(value))
        except (MoneyFormatError, TypeError) as exc:
            raise SimError(f"金额[{value}]格式错误") from exc

    def record(self, env: dict[str, Any], psn_no: str | None, undo: Any) -> None:
        self.journal[env["msgid"]] = JournalEntry(env["msgid"], env["infno"], psn_no, undo)

    # --- envelope ------------------------------------------------------------------------
    def process(self, env: dict[str, Any]) -> Any:
        infno = str(env.get("infno") or "")
        msgid = str(env.get("msgid") or "")
        match = MSGID_RE.match(msgid)
        if not match or match["code"] != env.get("fixmedins_code"):
            raise SimError(f"报文ID[{msgid}]格式错误")
        if env.get("fixmedins_code") != self.fixmedins_code:
            raise SimError(f"定点医药机构编号[{env.get('fixmedins_code')}]不存在")
        self.last_warn = None
        handler = getattr(self, f"tx_{infno}", None)
        if handler is None:
            raise SimError(f"交易编号[{infno}]不存在")
        if infno not in NO_SIGN_IN:
            expiry = self.sign_ins.get(str(env.get("sign_no") or ""))
            if expiry is None or expiry <= self.now():
                raise SimError("签到编号无效或已失效，请重新签到")
        if msgid in self.seen_msgids:
            raise SimError(f"报文ID[{msgid}]重复")
        data = env.get("input")
        if not isinstance(data, dict):
            raise SimError("input不能为空")
        self._check_receiver(env, data)
        self.seen_msgids.add(msgid)
        self.calls.append({"infno": infno, "msgid": msgid, "sign_no": env.get("sign_no"),
                           "recer_sys_code": env.get("recer_sys_code"), "insuplc_admdvs": env.get("insuplc_admdvs")})
        return handler(env, data)

    def _check_receiver(self, env: dict[str, Any], data: dict[str, Any]) -> None:
        section = data.get("data") or data.get("mdtrtinfo") or {}
        insutype = str(section.get("insutype", "")) if isinstance(section, dict) else ""
        expected = self.profile.recer_sys_codes.get(insutype)
        if expected and env.get("recer_sys_code") != expected:
            raise SimError(f"险种[{insutype}]的接收方系统代码应为{expected}")

    # --- 9001 / 9002 / 1101 --------------------------------------------------------------
    def tx_9001(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        sign_in = data.get("signIn") or {}
        if not sign_in.get("opter_no"):
            raise SimError("操作员编号不能为空")
        sign_no = f"{self.now().astimezone(CST).strftime('%Y%m%d%H%M%S')}{secrets.randbelow(10**8):08d}"
        self.sign_ins[sign_no] = self.now() + self.sign_in_ttl
        return {"signinoutb": {"sign_time": format_time(self.now()), "sign_no": sign_no}}

    def tx_9002(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        sign_no = str((data.get("signOut") or {}).get("sign_no", ""))
        self.sign_ins.pop(sign_no, None)
        return {"signoutoutb": {"sign_time": format_time(self.now()), "sign_no": sign_no}}

    def expire_sign_ins(self) -> int:
        count = len(self.sign_ins)
        self.sign_ins = {k: self.now() - dt.timedelta(seconds=1) for k in self.sign_ins}
        return count

    def issue_ec_token(self, qr_code: str) -> tuple[str, SimPerson]:
        for person in self.persons.values():
            if person.qr_code and person.qr_code == qr_code:
                token = secrets.token_hex(16)
                self.ec_tokens[token] = (person.psn_no, self.now() + EC_TOKEN_TTL)
                return token, person
        raise SimError("电子凭证无效或已过期")

    def find_person(self, cert_type: str, cert_no: str, card_sn: str) -> SimPerson:
        if cert_type == "01":
            held = self.ec_tokens.get(cert_no)
            if held is None or held[1] <= self.now():
                raise SimError("电子凭证令牌无效或已过期")
            return self.persons[held[0]]
        for person in self.persons.values():
            if cert_type == "02" and person.certno == cert_no:
                return person
            if cert_type == "03" and person.card_no == cert_no:
                if person.card_sn != card_sn:
                    raise SimError("社保卡卡识别码不匹配")
                return person
        if cert_type not in ("02", "03"):
            raise SimError(f"就诊凭证类型[{cert_type}]无效")
        raise SimError("未查询到参保人员信息")

    def tx_1101(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        q = data.get("data") or {}
        person = self.find_person(str(q.get("mdtrt_cert_type", "")), str(q.get("mdtrt_cert_no", "")),
                                  str(q.get("card_sn", "")))
        insuinfo = []
        for ins in person.insurances:
            row = {"balc": fen_to_yuan(person.acct_balance if ins.insutype not in ("390", "391", "392") else 0),
                   "insutype": ins.insutype, "psn_type": ins.psn_type, "psn_insu_stas": "1",
                   "psn_insu_date": "2010-01-01", "cvlserv_flag": "1" if ins.civil_servant else "0",
                   "insuplc_admdvs": ins.insuplc_admdvs, "emp_name": ins.employer}
            if self.profile.wallet_balance_field:
                row[self.profile.wallet_balance_field] = fen_to_yuan(person.wallet_balance)
            insuinfo.append(row)
        age = (self.now().date() - person.birthday).days // 365
        return {"baseinfo": {"psn_no": person.psn_no, "psn_cert_type": "01", "certno": person.certno,
                             "psn_name": person.name, "gend": person.gender, "naty": "01",
                             "brdy": person.birthday.isoformat(), "age": Decimal(age)},
                "insuinfo": insuinfo,
                "idetinfo": [{"psn_idet_type": "2301", "begntime": "2015-01-01 00:00:00"}] if person.medical_aid else []}

    # --- outpatient registration and visit info -----------------------------------------------
    def tx_2201(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        person = self.person(str(d.get("psn_no")), env)
        person.insurance(str(d.get("insutype")))
        visit = SimVisit(self.next_id("M"), person.psn_no, str(d.get("insutype")), "outpatient", "registered",
                         "12", parse_time(d.get("begntime")) or self.now(), ipt_otp_no=str(d.get("ipt_otp_no")))
        self.visits[visit.mdtrt_id] = visit
        self.record(env, person.psn_no, lambda: self._cancel_registration(visit))
        return {"data": {"mdtrt_id": visit.mdtrt_id, "psn_no": person.psn_no, "ipt_otp_no": visit.ipt_otp_no}}

    def _cancel_registration(self, visit: SimVisit) -> None:
        if visit.settled():
            raise SimError("该就诊存在有效结算，不能撤销挂号")
        visit.status = "cancelled"

    def tx_2202(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        visit = self.visit(str(d.get("mdtrt_id")), str(d.get("psn_no")), "outpatient")
        if visit.status == "cancelled":
            raise SimError("该挂号已撤销")
        self._cancel_registration(visit)
        return {}

    def tx_2203(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        info = data.get("mdtrtinfo") or {}
        visit = self.visit(str(info.get("mdtrt_id")), str(info.get("psn_no")), "outpatient")
        self._require_active(visit)
        visit.med_type = str(info.get("med_type") or visit.med_type)
        visit.diagnoses = list(data.get("diseinfo") or [])
        return {}

    def _require_active(self, visit: SimVisit) -> None:
        if visit.status == "cancelled":
            raise SimError(f"就诊ID[{visit.mdtrt_id}]已撤销")

    # --- fees -----------------------------------------------------------------------------
    def _upload(self, env: dict[str, Any], data: dict[str, Any], kind: str) -> Any:
        rows = data.get("feedetail") or []
        if not rows:
            raise SimError("费用明细不能为空")
        first = rows[0]
        visit = self.visit(str(first.get("mdtrt_id")), str(first.get("psn_no")), kind)
        self._require_active(visit)
        if kind == "inpatient" and visit.status not in ("admitted", "discharged"):
            raise SimError("未办理入院，不能上传费用")
        added: list[SimFee] = []
        for row in rows:
            sn = str(row.get("feedetl_sn"))
            if sn in visit.fees or any(f.feedetl_sn == sn for f in added):
                raise SimError(f"费用明细流水号[{sn}]重复")
            item = self.catalogue.get(str(row.get("med_list_codg")))
            if item is None:
                raise SimError(f"医保目录编码[{row.get('med_list_codg')}]不存在")
            amount = self._fen(row.get("det_item_fee_sumamt"))
            cnt, pric = Decimal(str(row.get("cnt"))), Decimal(str(row.get("pric")))
            parts = split_line(item, amount, cnt, pric)
            added.append(SimFee(sn, row.get("chrg_bchno"), item.code, amount, cnt, pric, parts.fulamt_ownpay,
                                parts.overlmt, parts.preselfpay, parts.inscp_scp, item, env["msgid"],
                                init_feedetl_sn=row.get("init_feedetl_sn")))
        for fee in added:
            visit.fees[fee.feedetl_sn] = fee
        self.record(env, visit.psn_no, lambda: self._revoke(visit, [f.feedetl_sn for f in added]))
        return {"result": [self._fee_result(f) for f in added]}

    @staticmethod
    def _fee_result(f: SimFee) -> dict[str, Any]:
        return {"feedetl_sn": f.feedetl_sn, "det_item_fee_sumamt": fen_to_yuan(f.amount), "cnt": str(f.cnt),
                "pric": str(f.pric), "pric_uplmt_amt": str(f.item.price_limit) if f.item.price_limit else None,
                "selfpay_prop": str(f.item.selfpay_prop), "fulamt_ownpay_amt": fen_to_yuan(f.fulamt_ownpay),
                "overlmt_amt": fen_to_yuan(f.overlmt), "preselfpay_amt": fen_to_yuan(f.preselfpay),
                "inscp_scp_amt": fen_to_yuan(f.inscp_scp), "chrgitm_lv": f.item.chrgitm_lv,
                "med_chrgitm_type": f.item.med_chrgitm_type}

    def _revoke(self, visit: SimVisit, sns: list[str]) -> None:
        for sn in sns:
            fee = visit.fees.get(sn)
            if fee is not None and fee.setl_id is not None:
                raise SimError(f"费用明细[{sn}]已结算，不能撤销")
        for sn in sns:
            if sn in visit.fees:
                visit.fees[sn].revoked = True

    def tx_2204(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._upload(env, data, "outpatient")

    def tx_2301(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        return self._upload(env, data, "inpatient")

    def tx_2205(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        d = data.get("data") or {}
        visit = self.visit(str(d.get("mdtrt_id")), str(d.get("psn_no")), "outpatient")
        self._revoke(visit, [f.feedetl_sn for f in visit.open_fees(str(d.get("chrg_bchno") or "0000"))])
        return {}

    def tx_2302(self, env: dict[str, Any], data: dict[str, Any]) -> Any:
        for row in data.get("data") or []:
            visit = self.visit(str(row.get("mdtrt_id")), str(row.get("psn_no")), "inpatient")
            sn = str(row.get("feedetl_sn"))
            sns = [f.feedetl_sn for f in visit.open_fees()] if sn == "0000" else [sn]
            self._revoke(visit, sns)
        return {}
