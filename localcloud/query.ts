import { ApiError } from './errors.js';

/**
 * EC2 Query parameters. The SDK flattens structures into dotted keys (`Filter.1.Value.2=x`);
 * they are rebuilt as a tree so actions read lists and structures by name.
 */
type Node = { [key: string]: Node | string };

export class Params {
  private constructor(private readonly node: Node) {}

  static parse(form: string): Params {
    const root: Node = {};
    for (const [key, value] of new URLSearchParams(form)) {
      const parts = key.split('.');
      let node = root;
      for (const part of parts.slice(0, -1)) {
        const next = node[part];
        node = typeof next === 'object' ? next : (node[part] = {});
      }
      node[parts[parts.length - 1]!] = value;
    }
    return new Params(root);
  }

  str(key: string): string | undefined {
    const v = this.node[key];
    return typeof v === 'string' ? v : undefined;
  }

  required(key: string): string {
    const v = this.str(key);
    if (v === undefined || v === '') throw new ApiError('MissingParameter', `The request must contain the parameter ${key}`);
    return v;
  }

  int(key: string): number | undefined {
    const v = this.str(key);
    if (v === undefined) return undefined;
    if (!/^-?\d+$/.test(v)) throw new ApiError('InvalidParameterValue', `Value (${v}) for parameter ${key} is invalid.`);
    return Number(v);
  }

  bool(key: string): boolean | undefined {
    const v = this.str(key);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false') throw new ApiError('InvalidParameterValue', `Value (${v}) for parameter ${key} is invalid.`);
    return v === 'true';
  }

  child(key: string): Params {
    const v = this.node[key];
    return new Params(typeof v === 'object' ? v : {});
  }

  /** Members of a `Key.N` list, in index order. */
  list(key: string): Params[] {
    return this.indexed(key).flatMap((v) => (typeof v === 'object' ? [new Params(v)] : []));
  }

  strings(key: string): string[] {
    return this.indexed(key).flatMap((v) => (typeof v === 'string' ? [v] : []));
  }

  private indexed(key: string): (Node | string)[] {
    const v = this.node[key];
    if (typeof v !== 'object') return [];
    return Object.keys(v)
      .filter((k) => /^\d+$/.test(k))
      .sort((a, b) => Number(a) - Number(b))
      .map((k) => v[k]!);
  }
}
