/** Stylesheets imported by the page are bundled by esbuild (src/web/build.ts) into app.css. */
declare module '*.css';
