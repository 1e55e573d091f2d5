// A menu button with a single choice (speed, quality): ARIA menu-button pattern with menuitemradio items.
// Arrow keys move, Home/End jump, Enter/Space pick, Escape and Tab close; focus goes back to the button.

export interface Choice<T> {
  value: T;
  label: string;
}

let menus = 0;

export class ChoiceMenu<T> {
  readonly element: HTMLDivElement;
  readonly button: HTMLButtonElement;
  private readonly list: HTMLUListElement;
  private choices: Choice<T>[] = [];
  private current: T | undefined;
  private rebuilding = false;

  constructor(
    name: string,
    private readonly onPick: (value: T) => void,
  ) {
    const id = `player-menu-${++menus}`;
    this.element = document.createElement("div");
    this.element.className = "player-menu";
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.className = "player-button player-menu-button";
    this.button.setAttribute("aria-label", name);
    this.button.setAttribute("aria-haspopup", "menu");
    this.button.setAttribute("aria-expanded", "false");
    this.button.setAttribute("aria-controls", id);
    this.list = document.createElement("ul");
    this.list.id = id;
    this.list.className = "player-menu-list";
    this.list.setAttribute("role", "menu");
    this.list.setAttribute("aria-label", name);
    this.list.hidden = true;
    this.element.append(this.button, this.list);

    this.button.addEventListener("click", () => (this.isOpen ? this.close(true) : this.open()));
    this.button.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        this.open(event.key === "ArrowUp" ? "last" : "checked");
      }
    });
    this.list.addEventListener("keydown", (event) => this.onKey(event));
    this.list.addEventListener("click", (event) => {
      const item = (event.target as Element).closest<HTMLElement>('[role="menuitemradio"]');
      if (item) this.pick(Number(item.dataset.index));
    });
    this.element.addEventListener("focusout", (event) => {
      if (this.rebuilding || !this.isOpen) return;
      if (!this.element.contains(event.relatedTarget as Node | null)) this.close(false);
    });
    document.addEventListener("pointerdown", (event) => {
      if (this.isOpen && !this.element.contains(event.target as Node)) this.close(false);
    });
  }

  get isOpen(): boolean {
    return !this.list.hidden;
  }

  /** Replace the choices; `label` is the button's visible text (its accessible name stays the menu's name). */
  set(choices: Choice<T>[], current: T, label: string): void {
    this.choices = choices;
    this.current = current;
    this.button.textContent = label;
    let items = this.items();
    if (items.length !== choices.length) {
      // New items: an open menu keeps focus where it was (replacing the focused item would close the menu).
      const focused = items.indexOf(document.activeElement as HTMLElement);
      this.rebuilding = true;
      this.list.replaceChildren(...choices.map(() => menuItem()));
      this.rebuilding = false;
      items = this.items();
      if (this.isOpen && focused >= 0) items[Math.min(focused, items.length - 1)]?.focus();
    }
    choices.forEach((choice, index) => {
      const item = items[index];
      if (!item) return;
      item.dataset.index = String(index);
      item.textContent = choice.label;
      item.setAttribute("aria-checked", String(choice.value === current));
    });
  }

  open(focus: "checked" | "last" = "checked"): void {
    this.list.hidden = false;
    this.button.setAttribute("aria-expanded", "true");
    const items = this.items();
    const checked = items.findIndex((item) => item.getAttribute("aria-checked") === "true");
    items[focus === "last" ? items.length - 1 : Math.max(0, checked)]?.focus();
  }

  close(returnFocus: boolean): void {
    this.list.hidden = true;
    this.button.setAttribute("aria-expanded", "false");
    if (returnFocus) this.button.focus();
  }

  private items(): HTMLElement[] {
    return [...this.list.querySelectorAll<HTMLElement>('[role="menuitemradio"]')];
  }

  private pick(index: number): void {
    const choice = this.choices[index];
    this.close(true);
    if (choice && choice.value !== this.current) this.onPick(choice.value);
  }

  private onKey(event: KeyboardEvent): void {
    const items = this.items();
    const at = items.indexOf(document.activeElement as HTMLElement);
    const move = (to: number) => items[(to + items.length) % items.length]?.focus();
    switch (event.key) {
      case "ArrowDown":
        move(at + 1);
        break;
      case "ArrowUp":
        move(at - 1);
        break;
      case "Home":
        move(0);
        break;
      case "End":
        move(items.length - 1);
        break;
      case "Enter":
      case " ":
        if (at >= 0) this.pick(at);
        break;
      case "Escape":
        this.close(true);
        break;
      case "Tab":
        this.close(false);
        return; // let focus move on
      default:
        return;
    }
    event.preventDefault();
    event.stopPropagation();
  }
}

function menuItem(): HTMLLIElement {
  const item = document.createElement("li");
  item.setAttribute("role", "menuitemradio");
  item.tabIndex = -1;
  return item;
}
