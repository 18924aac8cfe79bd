// grantry console: copy buttons, confirmations and countdowns. Every action also works
// without this file, as a plain form.
"use strict";
document.addEventListener("click", (e) => {
  const copy = e.target.closest("[data-copy], [data-copy-text]");
  if (copy) {
    const id = copy.dataset.copy || copy.dataset.copyText;
    const el = document.getElementById(id);
    if (!el) return;
    const text = "value" in el && el.value !== undefined ? el.value : el.textContent;
    const done = () => { copy.textContent = "Copied"; setTimeout(() => { copy.textContent = "Copy"; }, 2000); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, () => { el.select && el.select(); });
    } else if (el.select) {
      el.select(); document.execCommand("copy"); done();
    }
    return;
  }
  const confirmed = e.target.closest("[data-confirm]");
  if (confirmed && !window.confirm(confirmed.dataset.confirm)) {
    e.preventDefault();
  }
});
function tick() {
  const now = Date.now();
  document.querySelectorAll("[data-until]").forEach((el) => {
    const left = Math.max(0, Math.round((Number(el.dataset.until) - now) / 1000));
    const m = Math.floor(left / 60), s = left % 60;
    el.textContent = left > 0 ? `stops in ${m}:${String(s).padStart(2, "0")}` : "stopped";
  });
}
if (document.querySelector("[data-until]")) { tick(); setInterval(tick, 1000); }
