/** An error the emulated API answers with: the AWS error code, message, HTTP status and any extra fields EFS adds. */
export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
    readonly fields: Record<string, string> = {},
  ) {
    super(message);
  }
}
