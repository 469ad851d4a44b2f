/** An admin API answer other than 200: the status, a message for the operator, optional details. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}
