// A preview of cron expressions for the dashboard's schedule form: the next fire times of a
// five-field expression in an IANA time zone, and the expression in plain words.
//
// It covers what people type (`*`, `*/n`, ranges, lists, month and weekday names, the @ aliases)
// with Debian cron's day rule (day of month OR day of week when both are restricted). `L`, `W`
// and `#` are left to the server: `next()` answers null for them. Around a daylight-saving
// change the preview may differ from the server, whose `next_run_at` is authoritative.
const ALIASES = {
  "@yearly": "0 0 1 1 *",
  "@annually": "0 0 1 1 *",
  "@monthly": "0 0 1 * *",
  "@weekly": "0 0 * * 0",
  "@daily": "0 0 * * *",
  "@midnight": "0 0 * * *",
  "@hourly": "0 * * * *",
};
const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const DAY_NAMES = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];
// [min, max, names (value of names[i] is i + offset)]
const FIELDS = [
  [0, 59, null, 0],
  [0, 23, null, 0],
  [1, 31, null, 0],
  [1, 12, MONTHS, 1],
  [0, 7, DAYS, 0],
];
const MAX_STEPS = 400000;

class CronError extends Error {}

function value(text, [min, max]) {
  const number = /^\d+$/.test(text) ? Number(text) : NaN;
  if (Number.isNaN(number) || number < min || number > max) throw new CronError(`"${text}" is out of range ${min}-${max}`);
  return number;
}

function field(text, spec) {
  const [min, max, names, offset] = spec;
  // Names become numbers first, so that what is left of L, W or # is the special syntax.
  const numbered = text.toUpperCase().replace(/[A-Z]{3}/g, (name) => {
    const index = names ? names.indexOf(name) : -1;
    return index >= 0 ? String(index + offset) : name;
  });
  if (/[LW#?]/.test(numbered)) return null;
  const set = new Set();
  for (const item of numbered.split(",")) {
    const [range, stepText] = item.split("/");
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) throw new CronError(`bad step in "${item}"`);
    let low;
    let high;
    if (range === "*") [low, high] = [min, max];
    else if (range.includes("-")) {
      const [a, b] = range.split("-");
      [low, high] = [value(a, spec), value(b, spec)];
      if (low > high) throw new CronError(`"${range}" runs backwards`);
    } else {
      low = value(range, spec);
      high = stepText === undefined ? low : max;
    }
    for (let v = low; v <= high; v += step) set.add(v);
  }
  return set;
}

/** The parsed expression, or null when it uses L/W/# (previewed by the server only). */
function parse(expression) {
  const text = ALIASES[expression.trim().toLowerCase()] || expression.trim();
  if (text.startsWith("@")) throw new CronError("unknown alias");
  const parts = text.split(/\s+/);
  if (parts.length !== 5) throw new CronError("needs five fields: minute hour day-of-month month day-of-week");
  const sets = parts.map((part, i) => field(part, FIELDS[i]));
  if (sets.some((set) => set === null)) return null;
  if (sets[4].has(7)) sets[4].add(0);
  return {
    parts,
    minutes: sets[0],
    hours: sets[1],
    days: sets[2],
    months: sets[3],
    weekdays: sets[4],
    // Debian cron: when both day fields are restricted, either one matching is enough.
    either: !parts[2].startsWith("*") && !parts[4].startsWith("*"),
  };
}

function wallClock(formatter, ms) {
  const out = {};
  for (const { type, value: v } of formatter.formatToParts(new Date(ms))) out[type] = v;
  return {
    month: Number(out.month),
    day: Number(out.day),
    hour: Number(out.hour) % 24,
    minute: Number(out.minute),
    weekday: DAYS.indexOf(out.weekday.toUpperCase().slice(0, 3)),
  };
}

/** The next `count` fire times (Date) after `fromMs` in `timeZone`; null for L/W/#. */
function next(expression, timeZone, count = 5, fromMs = Date.now()) {
  const cron = parse(expression);
  if (cron === null) return null;
  const formatter = new Intl.DateTimeFormat("en-US", {
    timeZone,
    hourCycle: "h23",
    month: "numeric",
    day: "numeric",
    hour: "numeric",
    minute: "numeric",
    weekday: "short",
  });
  const found = [];
  let t = Math.floor(fromMs / 60000) * 60000 + 60000;
  for (let steps = 0; steps < MAX_STEPS && found.length < count; steps += 1) {
    const w = wallClock(formatter, t);
    const dayOk = cron.either
      ? cron.days.has(w.day) || cron.weekdays.has(w.weekday)
      : cron.days.has(w.day) && cron.weekdays.has(w.weekday);
    if (!cron.months.has(w.month) || !dayOk) {
      t += ((23 - w.hour) * 60 + (60 - w.minute)) * 60000; // to the next local midnight
    } else if (!cron.hours.has(w.hour)) {
      t += (60 - w.minute) * 60000;
    } else if (!cron.minutes.has(w.minute)) {
      t += 60000;
    } else {
      found.push(new Date(t));
      t += 60000;
    }
  }
  return found;
}

function list(set, names) {
  const values = [...set].sort((a, b) => a - b);
  return values.map((v) => (names ? names[v % names.length] : String(v))).join(", ");
}

function pad(n) {
  return String(n).padStart(2, "0");
}

/** The expression in plain words ("at 02:30, on Monday"); throws CronError when invalid. */
function describe(expression) {
  const cron = parse(expression);
  if (cron === null) return `"${expression.trim()}" (uses L, W or #: see the server's next run)`;
  const [m, h, dom, mon, dow] = cron.parts;
  const words = [];
  const step = (part) => /^\*\/(\d+)$/.exec(part);
  if (/^\d+$/.test(m) && /^\d+$/.test(h)) words.push(`at ${pad(h)}:${pad(m)}`);
  else {
    if (m === "*") words.push("every minute");
    else if (step(m)) words.push(`every ${step(m)[1]} minutes`);
    else words.push(`at minute ${list(cron.minutes)}`);
    if (h === "*") words.push(m === "*" || step(m) ? "" : "of every hour");
    else if (step(h)) words.push(`every ${step(h)[1]} hours`);
    else words.push(`past hour ${list(cron.hours)}`);
  }
  if (dom === "*" && dow === "*" && mon === "*" && /^\d+$/.test(h)) words.push("every day");
  if (dom !== "*") words.push(`on day ${list(cron.days)} of the month`);
  if (dow !== "*") words.push(`${dom !== "*" ? "or " : ""}on ${list(cron.weekdays, DAY_NAMES)}`);
  if (mon !== "*") words.push(`in ${list(cron.months, [null, ...MONTH_NAMES])}`);
  return words.filter(Boolean).join(", ");
}

export { next, describe, CronError };
