// The console imports no feature: each feature provides its read model from its own folder
// (src/console/sources.ts). Here, where both may be imported, the typecheck holds the two
// shapes together (a feature's source that drifts from the console's interface fails
// `npm run typecheck`), and each source answers on a real (in-memory SQLite) database.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { announcementSource } from '../../src/announce/console.ts';
import { escalationSource } from '../../src/callout/console.ts';
import type {
  AnnouncementSource,
  EscalationSource,
  PushDeviceSource,
} from '../../src/console/sources.ts';
import { pushDeviceSource } from '../../src/push/console.ts';
import { featureModules } from '../../src/serve/modules.ts';
import { createService } from '../../src/serve/service.ts';
import { testConfig } from '../serve/helpers.ts';

test("each feature's console source has the console's shape and answers", async () => {
  const config = testConfig();
  config.announce.enabled = false;
  const service = createService({ config, modules: featureModules() });
  try {
    await service.start();
    const db = service.context?.db;
    assert.ok(db);
    const escalations: EscalationSource = escalationSource(db);
    const announcements: AnnouncementSource = announcementSource(db);
    const devices: PushDeviceSource = pushDeviceSource(db);
    assert.deepEqual(await escalations.list({ status: 'running', limit: 10, offset: 0 }), {
      total: 0,
      items: [],
    });
    assert.deepEqual(await announcements.schedule(), []);
    assert.deepEqual(await announcements.history({ limit: 10, offset: 0 }), {
      total: 0,
      items: [],
    });
    // push.enabled is false: its table may be absent, so only the shape is checked above.
    assert.equal(typeof devices.counts, 'function');
  } finally {
    await service.stop();
  }
});
