/**
 * The livemig migration protocol (the wire format is documented in wire.ts): constants and enums, frame binding,
 * the frame reader, payload fields and messages, PAGES frames. This file is the folder's public surface.
 */
export * from './binding.js';
export * from './bodies.js';
export * from './messages.js';
export * from './page-entry.js';
export * from './pages.js';
export * from './payload.js';
export * from './reader.js';
export * from './wire.js';
