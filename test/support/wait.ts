export { sleep, unique, waitUntil } from '../../src/testing/wait.js';
