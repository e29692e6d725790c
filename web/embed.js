// The one-line embed for pages on any origin:
//   <script type="module" src="https://SERVER/embed.js"></script>
//   <fanswarm-player src="https://SERVER/t/<hex>.torrent"></fanswarm-player>
// Defines <fanswarm-player> (player.js). On a foreign origin the element
// shows the server's /embed/<hex> frame, where the stream service worker can
// run; see ARCHITECTURE.md ("Embedding").
import './player.js';
