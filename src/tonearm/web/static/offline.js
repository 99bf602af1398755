// Offline playback for Premium listeners: this browser as one of the five devices, downloads, and a
// Service Worker. (stub: filled in by the offline work)
// The player asks this first: a local source for a downloaded track, or null.
export async function offlineSource(trackId) { return null; }
