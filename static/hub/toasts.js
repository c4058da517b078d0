// Short notices (#toasts): a refused HTMX request (403) answers with one, which htmx would
// otherwise drop as an error; each fades after a while or when clicked.
document.addEventListener("htmx:beforeSwap", (event) => {
  const xhr = event.detail.xhr;
  if (xhr.status === 403 && xhr.getResponseHeader("HX-Retarget") === "#toasts") {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});
document.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id !== "toasts") return;
  event.detail.target.querySelectorAll("[data-toast]:not([data-timed])").forEach((toast) => {
    toast.dataset.timed = "1";
    setTimeout(() => toast.remove(), 8000);
  });
});
document.addEventListener("click", (event) => {
  const toast = event.target.closest("[data-toast]");
  if (toast) toast.remove();
});
