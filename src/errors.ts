/** An error caused by what the user gave us (a recipe, a flag, a file). The CLI prints its message
 * without a stack trace and exits with `exitCode` (2 for invalid input, as for a bad recipe). */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
    this.name = 'UserError';
  }
}
