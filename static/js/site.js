// Behaviour every page shares, bound here because the Content-Security-Policy allows no inline script:
// a <select data-autosubmit> submits its form when changed (the language menu).
document.addEventListener("change", (event) => {
  const target = event.target;
  if (target instanceof HTMLSelectElement && target.hasAttribute("data-autosubmit") && target.form) {
    target.form.submit();
  }
});
