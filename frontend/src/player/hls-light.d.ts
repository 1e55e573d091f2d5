// hls.js ships no typings beside its light ES module; it has the full build's API minus the optional features.
declare module "hls.js/light" {
  export * from "hls.js";
  export { default } from "hls.js";
}
