// Keyboard shortcuts of the Label tab; keys are ignored while typing in a text box.
(() => {
  const keys = window.RMLAB_SHORTCUTS || {};  // key -> element id of the button it clicks
  const typing = (el) => el && (el.isContentEditable || ["TEXTAREA", "SELECT"].includes(el.tagName)
      || (el.tagName === "INPUT" && !["checkbox", "radio", "button", "submit"].includes(el.type)));
  document.addEventListener("keydown", (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || typing(e.target)) return;
    const el = document.getElementById(keys[e.key.toLowerCase()]);
    const button = el && (el.tagName === "BUTTON" ? el : el.querySelector("button"));
    if (!button || button.disabled || button.offsetParent === null) return;  // hidden or busy
    e.preventDefault();
    button.click();
  });
})();
