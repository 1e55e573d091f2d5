// Page modules import their style sheet for esbuild to emit beside the bundle (`import "./library.css"`); to the type
// checker such an import is a module with nothing in it.
declare module "*.css";
