import type { OptionKey } from '../../core/volume-options.js';

/** A Create's options as given, by key (strings, trimmed); each backing's parser reads its keys from it. */
export type GivenValues = ReadonlyMap<OptionKey, string>;
