/** The migration protocol lives in ./protocol/ (one file per part); this path stays for existing importers. */
export * from './protocol/index.js';
