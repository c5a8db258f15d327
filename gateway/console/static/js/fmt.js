// Formatting: money in integer fen shown as yuan (string arithmetic only), China-time dates.
import { L } from './i18n.js';

const TZ = 'Asia/Shanghai';

function group(digits) { return digits.replace(/\B(?=(\d{3})+(?!\d))/g, ','); }

// 123456 → "1,234.56"; -5 → "-0.05". Never divides floats: the integer part is an exact division
// of a multiple of 100, the cents are the remainder.
export function yuan(fen, opts = {}) {
  if (fen === null || fen === undefined || fen === '') return '—';
  const n = typeof fen === 'number' ? Math.trunc(fen) : parseInt(String(fen), 10);
  if (!Number.isFinite(n)) return '—';
  const neg = n < 0;
  const a = Math.abs(n);
  const cents = a % 100;
  const whole = (a - cents) / 100;
  const body = `${group(String(whole))}.${String(cents).padStart(2, '0')}`;
  const sign = neg ? '-' : (opts.plus && n > 0 ? '+' : '');
  return `${sign}${opts.symbol ? '¥' : ''}${body}`;
}

// "12.3" / "12.30" / "1,234" → fen as an integer (string parsing; no float rounding); null if not money.
export function parseYuan(text) {
  const s = String(text ?? '').trim().replace(/,/g, '').replace(/^¥/, '');
  const m = /^(\d{1,11})(?:\.(\d{1,2}))?$/.exec(s);
  if (!m) return null;
  return parseInt(m[1], 10) * 100 + parseInt((m[2] || '0').padEnd(2, '0'), 10);
}

export function int(n) {
  if (n === null || n === undefined || n === '') return '—';
  return group(String(Math.trunc(Number(n))));
}

let dtf;
let df;
function parts(d, withTime) {
  if (withTime) {
    dtf = dtf || new Intl.DateTimeFormat('en-GB', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit',
      hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  } else {
    df = df || new Intl.DateTimeFormat('en-GB', { timeZone: TZ, year: 'numeric', month: '2-digit', day: '2-digit' });
  }
  const o = {};
  (withTime ? dtf : df).formatToParts(d).forEach((p) => { o[p.type] = p.value; });
  return o;
}

// ISO timestamp → "YYYY-MM-DD HH:mm:ss", China time.
export function datetime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return String(iso);
  const p = parts(d, true);
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
}

// Today's business day in China time, "YYYY-MM-DD".
export function today() {
  const p = parts(new Date(), false);
  return `${p.year}-${p.month}-${p.day}`;
}

// Calendar arithmetic on "YYYY-MM-DD" strings (UTC-based, so no DST surprises).
export function addDays(day, n) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + n);
  return d.toISOString().slice(0, 10);
}

export function monthOf(day) { return day.slice(0, 7); }

export function addMonths(month, n) {
  const [y, m] = month.split('-').map((x) => parseInt(x, 10));
  const t = y * 12 + (m - 1) + n;
  return `${Math.floor(t / 12)}-${String((t % 12) + 1).padStart(2, '0')}`;
}

export function shortDay(day) { return day ? day.slice(5) : ''; }

// --- labels and colours ---------------------------------------------------------------------------
export const PAYMENT_STATUS = {
  CREATED: ['已创建', 'Created', ''],
  PAYING: ['支付中', 'Paying', 'warn'],
  SUCCEEDED: ['支付成功', 'Succeeded', 'ok'],
  FAILED: ['支付失败', 'Failed', 'bad'],
  CLOSED: ['已关闭', 'Closed', ''],
  REVERSED: ['已撤销', 'Reversed', ''],
  UNKNOWN: ['结果未知', 'Unknown', 'warn'],
  PARTIALLY_REFUNDED: ['部分退款', 'Partly refunded', 'info'],
  REFUNDED: ['已退款', 'Refunded', 'info'],
  PROCESSING: ['处理中', 'Processing', 'warn'],
};
export const WRITEBACK_STATUS = {
  WAITING: ['待支付', 'Waiting', ''],
  PENDING: ['待回写', 'Pending', 'warn'],
  RECORDED: ['已回写', 'Recorded', 'ok'],
  FAILED: ['回写失败', 'Failed', 'bad'],
  REJECTED: ['业务系统拒绝', 'Rejected', 'bad'],
  CANCELLED: ['已取消', 'Cancelled', ''],
};
export const CASE_STATUS = {
  OPEN: ['待处理', 'Open', 'bad'],
  APPROVING: ['退款审核中', 'Awaiting approval', 'warn'],
  REFUNDING: ['退款中', 'Refunding', 'warn'],
  RESOLVED: ['已处理', 'Resolved', 'ok'],
};
export const APPROVAL_STATUS = {
  PENDING: ['待审核', 'Pending', 'warn'],
  APPROVED: ['已通过', 'Approved', 'ok'],
  REJECTED: ['已驳回', 'Rejected', 'bad'],
  WITHDRAWN: ['已撤回', 'Withdrawn', ''],
};
export const DIFF_STATUS = {
  OPEN: ['待处理', 'Open', 'bad'],
  RESOLVED: ['已处理', 'Resolved', 'ok'],
  CLEARED: ['已自动消除', 'Cleared', 'ok'],
};
export const DAY_STATE = {
  balanced: ['已平', 'Balanced', 'ok'],
  differences: ['有差异', 'Differences', 'bad'],
  incomplete: ['数据不全', 'Incomplete', 'warn'],
  not_run: ['未对账', 'Not run', ''],
  running: ['对账中', 'Running', 'warn'],
  failed: ['对账失败', 'Failed', 'bad'],
};
export const METHODS = { code: ['付款码', 'Payment code'], qr: ['扫码', 'QR'], jsapi: ['公众号/小程序', 'JSAPI / mini-program'],
  h5: ['H5', 'H5'] };
export const CHANNELS = { wechatpay: ['微信支付', 'WeChat Pay'], alipay: ['支付宝', 'Alipay'], unionpay: ['银联', 'UnionPay'],
  ecny: ['数字人民币', 'e-CNY'], cash: ['现金', 'Cash'] };
export const DIFF_CLASS = {
  matched: ['已平', 'Matched'], long: ['长款', 'Long'], short: ['短款', 'Short'],
  amount_mismatch: ['金额不符', 'Amount mismatch'], status_mismatch: ['状态不符', 'Status mismatch'],
  duplicate: ['重复支付', 'Duplicate'], cross_day: ['跨日伪单边', 'Cross-day'], no_money: ['无资金往来', 'No money moved'],
  arrival_missing: ['未到账', 'Not arrived'], arrival_mismatch: ['到账金额不符', 'Arrival differs'],
  ins_amount: ['医保金额不符', 'Insurance amount differs'], ins_hospital_only: ['医院有中心无', 'Hospital only'],
  ins_centre_only: ['中心有医院无', 'Centre only'],
};
export const MARKS = { balanced: ['平账/调账', 'Balanced (adjusted)'], cash_refund: ['现金退款', 'Cash refund registered'],
  written_back: ['已补录HIS', 'Recorded in HIS by hand'], ignored: ['忽略', 'Ignored'] };
export const SOURCES = { platform: ['平台', 'Platform'], his: ['HIS', 'HIS'], channel: ['渠道', 'Channel'],
  bank: ['银行', 'Bank'] };

// The label of a code in one of the tables above, in the current language.
export function label(table, code) {
  const e = table[code];
  return e ? L(e[0], e[1]) : (code ?? '—');
}
export function kindOf(table, code) { const e = table[code]; return (e && e[2]) || ''; }
export function channelName(code) { return label(CHANNELS, code); }
export function methodName(code) { return label(METHODS, code); }
