// The fingerprint is computed where dead letters are written (stores keep it as a column), so it
// lives in the store layer; the console re-exports it under its documented name.
export { fingerprint, normaliseFrame, normaliseMessage } from '../store/dead-letter-fingerprint.js';
