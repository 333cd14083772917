'use strict';
// Keyboard shortcuts of the suggestion page: the key in a button's data-prodcat-key presses
// it (a: accept and next, r: reject, n: next), unless the focus is in a field.
{
    document.addEventListener('keydown', (event) => {
        if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) { return; }
        const target = event.target;
        if (target.closest && target.closest('input, select, textarea, [contenteditable]')) { return; }
        const key = event.key.toLowerCase();
        const control = document.querySelector('[data-prodcat-key="' + key + '"]');
        if (control) {
            event.preventDefault();
            control.click();
        }
    });
}
