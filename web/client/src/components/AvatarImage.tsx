// An avatar's picture fetched with a key (an uploaded portrait is shown only to holders of its
// upload key or of a booking made with it); nothing is shown until it has loaded.
import { useEffect, useState } from "react";
import { api } from "../api";

export function AvatarImage(props: { avatarId: string; imageKey: string; alt?: string }) {
  const { avatarId, imageKey } = props;
  const [url, setUrl] = useState<string | null>(null);
  useEffect(() => {
    let made: string | null = null;
    let live = true;
    api
      .avatarImage(avatarId, imageKey)
      .then((u) => {
        made = u;
        if (live) setUrl(u);
        else URL.revokeObjectURL(u);
      })
      .catch(() => undefined); // no picture: the stage stays plain
    return () => {
      live = false;
      if (made) URL.revokeObjectURL(made);
      setUrl(null);
    };
  }, [avatarId, imageKey]);
  return url ? <img src={url} alt={props.alt ?? ""} data-avatar-image={avatarId} /> : null;
}
