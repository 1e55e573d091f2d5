// The watch page (/v/{link_id}) and the embed page (/embed/{link_id}): the player, and on the watch page the share
// actions and the owner's editing. The module runs at the end of <body>, so the manifest starts loading at once.
import "./player.css";
import { api, pageData } from "./api";
import { clock, day } from "./format";
import { bindEditor } from "./player/editor";
import { displayTitle, type SharedRecording } from "./player/recording";
import { bindCopyLink } from "./player/share";
import { VideoPlayer } from "./player/video-player";

const FRESH_FOR_MS = 45 * 60_000; // signed media URLs live an hour at least (docs/protocol.md, Media delivery)

const shared = pageData<SharedRecording>("shared-recording");
let fetchedAt = Date.now();
const root = document.getElementById("player");
if (root) {
  new VideoPlayer(root, shared, { onUpdate: updatePage });
}
// Everything else waits until the browser is idle: the first frame comes first (the first toLocaleDateString alone
// loads locale data for tens of milliseconds, and the page already shows the date in ISO form until then).
if ("requestIdleCallback" in window) requestIdleCallback(watchPage, { timeout: 1000 });
else setTimeout(watchPage, 200);

function watchPage(): void {
  for (const time of document.querySelectorAll<HTMLTimeElement>("time[data-day]")) {
    time.textContent = day(time.dateTime);
  }
  const status = document.getElementById("watch-status");
  const say = (message: string) => {
    if (status) status.textContent = message;
  };
  const download = document.getElementById("download-link");
  if (download instanceof HTMLAnchorElement) {
    download.addEventListener("click", (event) => {
      if (Date.now() - fetchedAt < FRESH_FOR_MS) return;
      event.preventDefault(); // the page is old: its link may have expired, get a fresh one first
      void api<SharedRecording>(`/api/v1/links/${encodeURIComponent(shared.link_id)}`)
        .then((fresh) => {
          updatePage(fresh);
          if (fresh.playback.download_url) location.assign(fresh.playback.download_url);
        })
        .catch(() => say("The download could not start: reload the page and try again."));
    });
  }
  const copy = document.getElementById("copy-link");
  if (copy instanceof HTMLButtonElement) bindCopyLink(copy, () => shared.share_url, say);

  const edit = document.getElementById("edit-button");
  const form = document.getElementById("edit-form");
  const heading = document.getElementById("watch-title");
  const description = document.getElementById("watch-description");
  if (shared.recording_id && edit instanceof HTMLButtonElement && form instanceof HTMLFormElement && heading && description) {
    bindEditor({
      button: edit,
      form,
      heading,
      description,
      recordingId: shared.recording_id,
      initial: { title: shared.title, description: shared.description },
      onSaved: (texts) => {
        shared.title = texts.title;
        shared.description = texts.description;
        document.title = `${displayTitle(texts.title)} – framecast`;
        say("Saved");
      },
    });
  }
}

/** Fresh JSON from a poll: links are signed and short-lived, so keep the download link's current; a live recording's
 * length is known once it ends. */
function updatePage(fresh: SharedRecording): void {
  fetchedAt = Date.now();
  const length = document.getElementById("watch-length");
  if (length?.firstElementChild && fresh.duration_ms) {
    length.firstElementChild.textContent = clock(fresh.duration_ms);
    length.hidden = false;
  }
  const download = document.getElementById("download-link");
  const url = fresh.allow_download ? fresh.playback.download_url : null;
  if (download instanceof HTMLAnchorElement) {
    if (url) download.href = url;
    download.hidden = !url;
  }
}
