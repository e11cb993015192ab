import pkg from '../package.json' with { type: 'json' };

/** The release, from package.json; the bundle carries it, as the plugin's rootfs has no package.json. */
export const VERSION: string = pkg.version;
