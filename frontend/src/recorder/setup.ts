// Before recording: the mode, the camera and microphone pickers, and the live preview of what is open. Devices open
// as soon as a mode needs them (the browser asks for permission then), and their names fill the pickers once allowed.

import { type LevelMeter } from "./meter";
import type { Sources } from "./capture";
import { captureProblem, listDevices, MODES, openCamera, openMicrophone, stopTracks, usesCamera, type Device, type Mode } from "./media";

export interface SetupElements {
  form: HTMLFormElement;
  cameraField: HTMLElement;
  cameraSelect: HTMLSelectElement;
  micSelect: HTMLSelectElement;
  video: HTMLVideoElement;
  empty: HTMLElement;
  emptyText: HTMLElement;
}

const EMPTY_TEXT: Record<Mode, string> = {
  screen: "Your screen appears here once you choose what to share.",
  camera: "Your camera appears here.",
  screen_camera: "Your screen appears here once you choose what to share, with your camera in a corner.",
  audio: "Only sound is recorded.",
};

export class Setup {
  private camera: MediaStream | null = null;
  private cameraId = "";
  private microphone: MediaStream | null = null;
  private microphoneId = "";
  private generation = 0;

  constructor(
    private readonly el: SetupElements,
    private readonly meter: LevelMeter,
    private readonly onProblem: (message: string | null) => void,
  ) {
    el.form.addEventListener("change", (event) => {
      if (event.target instanceof HTMLSelectElement) event.target.dataset["chosen"] = event.target.value;
      void this.refresh();
    });
    navigator.mediaDevices?.addEventListener?.("devicechange", () => void this.fillPickers());
  }

  get mode(): Mode {
    const value = this.el.form.querySelector<HTMLInputElement>('input[name="mode"]:checked')?.value;
    return MODES.find((mode) => mode === value) ?? "screen";
  }

  /** List the devices and open what the chosen mode needs. */
  async init(): Promise<void> {
    await this.fillPickers();
    await this.refresh();
  }

  /** Open or close devices to match the form; show them in the preview. */
  async refresh(): Promise<void> {
    const generation = ++this.generation;
    const mode = this.mode;
    this.el.cameraField.hidden = !usesCamera(mode);
    const problems: string[] = [];
    const wantCamera = usesCamera(mode) ? this.el.cameraSelect.value || DEFAULT : "";
    if (wantCamera !== this.cameraId || (wantCamera && !this.camera)) {
      stopTracks(this.camera);
      this.camera = null;
      this.cameraId = wantCamera;
      if (wantCamera) {
        try {
          const stream = await openCamera(wantCamera === DEFAULT ? "" : wantCamera);
          if (generation !== this.generation) return stopTracks(stream);
          this.camera = stream;
        } catch (error) {
          if (generation !== this.generation) return;
          problems.push(captureProblem(error, "camera").message);
        }
      }
    }
    const wantMic = this.el.micSelect.value === NONE ? "" : this.el.micSelect.value || DEFAULT;
    if (wantMic !== this.microphoneId || (wantMic && !this.microphone)) {
      stopTracks(this.microphone);
      this.microphone = null;
      this.microphoneId = wantMic;
      if (wantMic) {
        try {
          const stream = await openMicrophone(wantMic === DEFAULT ? "" : wantMic);
          if (generation !== this.generation) return stopTracks(stream);
          this.microphone = stream;
        } catch (error) {
          if (generation !== this.generation) return;
          problems.push(captureProblem(error, "microphone").message);
        }
      }
    }
    this.onProblem(problems.length ? problems.join(" ") : null);
    this.showPreview(usesCamera(mode) ? this.camera : null);
    this.meter.follow(this.microphone);
    if ((this.camera || this.microphone) && !this.labelled) await this.fillPickers(); // names come with permission
  }

  /** Hand the open devices over to a recording; the setup lets go of them (they are stopped with the capture). */
  take(): Sources {
    this.generation += 1;
    const sources = { camera: usesCamera(this.mode) ? this.camera : null, microphone: this.microphone };
    if (!sources.camera) stopTracks(this.camera);
    this.camera = null;
    this.microphone = null;
    this.cameraId = "";
    this.microphoneId = "";
    return sources;
  }

  /** Show `stream` in the preview, or for null the empty state with `text` (else the mode's). */
  showPreview(stream: MediaStream | null, text?: string): void {
    this.el.emptyText.textContent = text ?? EMPTY_TEXT[this.mode];
    this.el.video.srcObject = stream;
    this.el.video.hidden = !stream;
    this.el.empty.hidden = !!stream;
    if (stream) void this.el.video.play().catch(() => undefined);
  }

  setDisabled(disabled: boolean): void {
    for (const control of this.el.form.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLButtonElement>("input, select, button")) {
      control.disabled = disabled;
    }
  }

  private labelled = false;

  private async fillPickers(): Promise<void> {
    let devices: { cameras: Device[]; microphones: Device[] };
    try {
      devices = await listDevices();
    } catch {
      return;
    }
    this.labelled = [...devices.cameras, ...devices.microphones].some((device) => device.named);
    fill(this.el.cameraSelect, devices.cameras, "Default camera", []);
    fill(this.el.micSelect, devices.microphones, "Default microphone", [new Option("No microphone", NONE)]);
    // The devices opened as "the default" are now listed by name: show them as chosen, without reopening them.
    this.cameraId = adopt(this.el.cameraSelect, this.camera) ?? this.cameraId;
    this.microphoneId = adopt(this.el.micSelect, this.microphone) ?? this.microphoneId;
  }
}

const DEFAULT = "default";
const NONE = "none";

/** Replace a picker's options, keeping the device the person chose if it is still there (else the first). Before
 * the browser has been allowed to use devices it lists none, so the picker offers the default device. */
function fill(select: HTMLSelectElement, devices: Device[], fallback: string, extra: HTMLOptionElement[]): void {
  const chosen = select.dataset["chosen"] ?? "";
  const options = devices.length ? devices.map((device) => new Option(device.label, device.id)) : [new Option(fallback, DEFAULT)];
  select.replaceChildren(...options, ...extra);
  const keep = [...select.options].some((option) => option.value === chosen);
  select.value = keep ? chosen : (options[0]?.value ?? "");
}

/** Select the open stream's device in its picker, unless the person chose another; returns the id selected. */
function adopt(select: HTMLSelectElement, stream: MediaStream | null): string | undefined {
  const id = stream?.getTracks()[0]?.getSettings().deviceId;
  if (!id || select.dataset["chosen"] || ![...select.options].some((option) => option.value === id)) return undefined;
  select.value = id;
  return id;
}
