/** What a PBX would answer about its channels after a sequence of AMI events. */
import type { AmiEvent } from '../../src/ami/message.ts';

/** What Asterisk would list in CoreShowChannels after `events`: live channels and bridges. */
export function coreShowChannels(events: readonly AmiEvent[]): AmiEvent[] {
  const live = new Map<string, AmiEvent>();
  for (const event of events) {
    const uniqueid = event.Uniqueid as string;
    switch (event.Event) {
      case 'FullyBooted':
        live.clear();
        break;
      case 'Newchannel':
        live.set(uniqueid, {
          Event: 'CoreShowChannel',
          Channel: event.Channel as string,
          Uniqueid: uniqueid,
          Linkedid: event.Linkedid as string,
          ChannelState: event.ChannelState as string,
          Exten: event.Exten as string,
          AccountCode: event.AccountCode as string,
          CallerIDName: event.CallerIDName as string,
          CallerIDNum: event.CallerIDNum as string,
          ConnectedLineName: event.ConnectedLineName as string,
          ConnectedLineNum: event.ConnectedLineNum as string,
          BridgeId: '',
        });
        break;
      case 'Newstate': {
        const item = live.get(uniqueid);
        if (item) item.ChannelState = event.ChannelState as string;
        break;
      }
      case 'BridgeEnter':
      case 'BridgeLeave': {
        const item = live.get(uniqueid);
        if (item)
          item.BridgeId = event.Event === 'BridgeEnter' ? (event.BridgeUniqueid as string) : '';
        break;
      }
      case 'Hangup':
        live.delete(uniqueid);
        break;
    }
  }
  return [...live.values()];
}
