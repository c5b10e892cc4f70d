/** The package version and the migration protocol version, shown by `livemig --version` and in reports. */
export const VERSION = '0.1.0';
