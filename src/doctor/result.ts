/**
 * The result of one check of `switchboard doctor`, apart from the doctor so that a feature
 * (src/serve/module.ts `Feature.doctorChecks`) can give its own without importing it.
 *
 * @module
 */

/** The result of one check: one line of `switchboard doctor`. */
export interface DoctorResult {
  /** What was checked: `config`, `sox`, `espeak-ng`, `database`, `ami pbx1`, `redis`, ... */
  name: string;
  ok: boolean;
  /** What was found (version, address), or what is wrong and how to fix it. One line, no secret. */
  detail: string;
}
