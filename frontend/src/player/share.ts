// "Copy link": the share URL to the clipboard, with a fallback for browsers (or insecure origins) without the
// asynchronous clipboard, and a polite announcement either way.

export function bindCopyLink(button: HTMLButtonElement, url: () => string, say: (message: string) => void): void {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const link = url();
    const copied = (await writeClipboard(link)) || copyWithSelection(link);
    say(copied ? "Link copied" : `Copy this link: ${link}`);
  });
}

async function writeClipboard(text: string): Promise<boolean> {
  if (!navigator.clipboard?.writeText) return false;
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    return false; // permission refused, or the document is not focused
  }
}

function copyWithSelection(text: string): boolean {
  const focused = document.activeElement as HTMLElement | null;
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "visually-hidden";
  document.body.append(area);
  area.select();
  let copied = false;
  try {
    copied = document.execCommand("copy"); // deprecated, but the only way left where the Clipboard API is missing
  } catch {
    copied = false;
  }
  area.remove();
  focused?.focus();
  return copied;
}
