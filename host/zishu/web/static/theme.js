// Runs before the page paints: the theme saved by the sidebar toggle, else the system's choice.
(function () {
  var theme = null;
  try { theme = localStorage.getItem("zishu-theme"); } catch (e) { /* storage blocked */ }
  if (theme !== "dark" && theme !== "light") {
    theme = window.matchMedia && matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
  }
  document.documentElement.setAttribute("data-theme", theme);
})();
