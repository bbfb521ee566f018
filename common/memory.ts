/**
 * Imported first by every entry point, before anything else allocates: V8 is told
 * to favour a small heap over speed. Its heap then grows in smaller steps and is
 * collected sooner (what it saved under load, and cost, is in docs/performance-log.md).
 * The flag cannot be given in NODE_OPTIONS, so it is set here, once, however the
 * process is started (npm start, the image, the compose files).
 */
import v8 from 'node:v8';

v8.setFlagsFromString('--optimize-for-size');
