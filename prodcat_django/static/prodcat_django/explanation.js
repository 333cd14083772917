'use strict';
// Loads the suggestion's explanation (title words, photo heat map) into the change page
// from its fragment view, the page the link opens on its own without JavaScript.
{
    function load(slot) {
        const url = slot.dataset.prodcatExplainUrl;
        slot.textContent = slot.dataset.loadingText || 'Loading the explanation…';
        fetch(url, {credentials: 'same-origin', headers: {'X-Requested-With': 'XMLHttpRequest'}})
            .then((response) => {
                if (!response.ok) {
                    throw new Error(response.status + ' ' + response.statusText);
                }
                return response.text();
            })
            .then((html) => { slot.innerHTML = html; })
            .catch((error) => {
                slot.textContent = 'The explanation could not be loaded (' + error.message + '). ';
                const link = document.createElement('a');
                link.href = url;
                link.textContent = 'Open it on its own page';
                slot.appendChild(link);
            });
    }
    window.addEventListener('load', () => {
        document.querySelectorAll('[data-prodcat-explain-url]').forEach(load);
    });
}
