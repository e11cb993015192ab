/**
 * EC2 Query responses. EC2 wraps every list in an element named after the list (`volumeSet`,
 * `tagSet`, …) with one `<item>` per member, so arrays here render as `<item>` children.
 */
export type XmlValue = string | number | boolean | undefined | XmlValue[] | { [name: string]: XmlValue };

export const EC2_NAMESPACE = 'http://ec2.amazonaws.com/doc/2016-11-15/';

function escape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&${{ '<': 'lt', '>': 'gt', '&': 'amp', '"': 'quot', "'": 'apos' }[c]};`);
}

function children(v: XmlValue): string {
  if (v === undefined) return '';
  if (Array.isArray(v)) return v.map((item) => element('item', item)).join('');
  if (typeof v === 'object') return Object.entries(v).map(([k, c]) => element(k, c)).join('');
  return escape(String(v));
}

export function element(name: string, v: XmlValue): string {
  if (v === undefined) return '';
  const inner = children(v);
  return inner === '' ? `<${name}/>` : `<${name}>${inner}</${name}>`;
}

export function ec2Response(action: string, requestId: string, body: Record<string, XmlValue>): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<${action}Response xmlns="${EC2_NAMESPACE}">` +
    element('requestId', requestId) +
    children(body) +
    `</${action}Response>`
  );
}

export function ec2Error(code: string, message: string, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n<Response>` +
    element('Errors', { Error: { Code: code, Message: message } }) +
    element('RequestID', requestId) +
    `</Response>`
  );
}
