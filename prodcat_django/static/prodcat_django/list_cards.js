'use strict';
// On phones admin.css lays list rows out as cards; each cell gets its column's name so the
// card still says what every value is. And the search box gets an accessible name.
window.addEventListener('DOMContentLoaded', () => {
    // The admin's search box is labelled by its icon only; give it a name of its own.
    const search = document.getElementById('searchbar');
    if (search && !search.hasAttribute('aria-label')) {
        const help = document.getElementById('searchbar_helptext');
        search.setAttribute('aria-label', help ? help.innerText.trim() : 'Search');
    }
    const table = document.getElementById('result_list');
    if (!table || !table.tHead) { return; }
    // The column's name only, not the sort priority digit of a list sorted on several columns.
    const names = Array.from(table.tHead.rows[0].cells).map((th) => {
        const text = th.querySelector('.text');
        return (text || th).innerText.trim();
    });
    Array.from(table.tBodies[0].rows).forEach((row) => {
        Array.from(row.cells).forEach((cell, i) => {
            if (names[i]) { cell.dataset.prodcatLabel = names[i]; }
        });
    });
});
