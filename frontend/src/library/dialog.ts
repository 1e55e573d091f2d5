// Asking before something that cannot be undone, in the page's <dialog>.

/**
 * Ask "Delete “title”?" in `dialog` (a <dialog> with a [data-question] heading and a form method="dialog" whose
 * buttons have value="delete" and value="keep"); resolves true only for Delete. Escape and Keep say no.
 */
export function confirmDelete(dialog: HTMLDialogElement, title: string): Promise<boolean> {
  const question = `Delete “${title}”?`;
  if (typeof dialog.showModal !== "function") {
    return Promise.resolve(window.confirm(`${question} This cannot be undone.`));
  }
  const heading = dialog.querySelector<HTMLElement>("[data-question]");
  if (heading) heading.textContent = question;
  dialog.returnValue = "";
  dialog.showModal();
  dialog.querySelector<HTMLButtonElement>('button[value="keep"]')?.focus();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "delete"), { once: true });
  });
}
