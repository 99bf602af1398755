// The share dialog: a link, the tonearm: URI and the embed code of a track, album, playlist or artist.
// (stub: filled in by the account/share work)
export async function openShare(type, id) { throw new Error(`sharing ${type} ${id} is not built yet`); }
