// Preloaded into a CLI run (NODE_OPTIONS=--require) by test/cli.folder.test.ts: logs every file
// opened for writing and every rename to CONVKIT_WRITE_LOG, one JSON line each, so the test can
// check that each output of a run folder was written under another name and renamed into place.
'use strict';
const fs = require('fs');

// One descriptor opened before the wrapping, written with writeSync (which is not wrapped: fs's
// own helpers call the wrapped functions, and logging through them would recurse).
const logFd = fs.openSync(process.env.CONVKIT_WRITE_LOG, 'a');
const log = (entry) => fs.writeSync(logFd, `${JSON.stringify(entry)}\n`);
const writes = (flags) => typeof flags === 'number'
  ? (flags & (fs.constants.O_WRONLY | fs.constants.O_RDWR)) !== 0
  : typeof flags === 'string' && /[wa+]/.test(flags);

function wrap(owner, name, describe) {
  const original = owner[name];
  owner[name] = function (...args) {
    const entry = describe(...args);
    if (entry) log(entry);
    return original.apply(this, args);
  };
}

const pathOf = (p) => (typeof p === 'string' ? p : Buffer.isBuffer(p) || p instanceof URL ? String(p) : null);
const writeEntry = (p) => (pathOf(p) ? { write: pathOf(p) } : null);
wrap(fs, 'openSync', (p, flags) => (writes(flags ?? 'r') ? writeEntry(p) : null));
wrap(fs, 'open', (p, flags) => (writes(typeof flags === 'function' ? 'r' : flags ?? 'r') ? writeEntry(p) : null));
wrap(fs.promises, 'open', (p, flags) => (writes(flags ?? 'r') ? writeEntry(p) : null));
for (const name of ['writeFileSync', 'appendFileSync', 'createWriteStream']) wrap(fs, name, writeEntry);
for (const name of ['writeFile', 'appendFile']) {
  wrap(fs, name, writeEntry);
  wrap(fs.promises, name, writeEntry);
}
wrap(fs, 'renameSync', (from, to) => ({ rename: pathOf(from), to: pathOf(to) }));
wrap(fs, 'rename', (from, to) => ({ rename: pathOf(from), to: pathOf(to) }));
wrap(fs.promises, 'rename', (from, to) => ({ rename: pathOf(from), to: pathOf(to) }));
