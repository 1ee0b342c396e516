'use strict';
// index.d.ts compiles against a typical use of the API (TypeScript, strict).

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('child_process');
const path = require('path');

test('index.d.ts type-checks a typical program', () => {
  const tsc = path.join(__dirname, '..', 'node_modules', 'typescript', 'bin', 'tsc');
  const file = path.join(__dirname, 'types', 'usage.ts');
  const out = execFileSync(process.execPath, [tsc, '--noEmit', '--strict', '--skipLibCheck', '--esModuleInterop', '--module', 'node16', '--moduleResolution', 'node16', '--target', 'es2020', '--types', 'node', file], {
    cwd: path.join(__dirname, '..'),
    encoding: 'utf8',
  });
  assert.equal(out, '');
});
