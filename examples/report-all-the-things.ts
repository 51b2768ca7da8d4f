// The equivalent of cacofonisk's ReportAllTheThings: print who is ringing, who answered,
// who transferred and who hung up, live from Asterisk.
// Run: node examples/report-all-the-things.ts tcp://USER:SECRET@127.0.0.1:5038
import { AmiRunner, parseAmiUrl, type Reporter } from 'switchboard';

const reporter: Reporter = {
  onBDial: ({ caller, targets }) =>
    console.log(
      `${targets.map((t) => t.callerId.num).join(', ')} is being called by ${caller.callerId.num}`,
    ),
  onUp: ({ caller, target }) =>
    console.log(`${target.callerId.num} is now in conversation with ${caller.callerId.num}`),
  onAttendedTransfer: ({ caller, transferer, target }) =>
    console.log(
      `${transferer.callerId.num} transferred ${caller.callerId.num} to ${target.callerId.num}`,
    ),
  onBlindTransfer: ({ caller, transferer }) =>
    console.log(`${transferer.callerId.num} transferred ${caller.callerId.num} to ${caller.exten}`),
  onHangup: ({ caller, reason }) =>
    console.log(`${caller.callerId.num} hung up (reason: ${reason})`),
};

const runner = new AmiRunner(
  [parseAmiUrl(process.argv[2] ?? 'tcp://cacofonisk:bard@127.0.0.1:5038')],
  reporter,
);
await runner.start();
process.once('SIGINT', () => void runner.stop());
process.once('SIGTERM', () => void runner.stop());
