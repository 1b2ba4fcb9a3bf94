// Optional niceties; every page works without script.
// - a form control marked data-autosubmit submits its form when changed;
// - a range input shows its value in the <output> named by its data-output.
document.addEventListener("DOMContentLoaded", () => {
  for (const el of document.querySelectorAll("[data-autosubmit]")) {
    el.addEventListener("change", () => el.form && el.form.requestSubmit());
  }
  // Empty filters stay out of the URL, so a shared link shows only what was chosen.
  for (const form of document.querySelectorAll("form.filters")) {
    form.addEventListener("submit", () => {
      for (const el of form.elements) if (el.name && el.value === "") el.disabled = true;
    });
  }
  for (const el of document.querySelectorAll("input[type=range][data-output]")) {
    const out = document.getElementById(el.dataset.output);
    if (out) el.addEventListener("input", () => { out.textContent = el.value + "%"; });
  }
});
