'use strict';
// The try-it page (admin/try_it.py): each product row goes to the same site's suggest/
// endpoint with explain=true; the answer is drawn in the row (bars, title words, a heat map
// over the photo). Nothing is saved. Files that are not images or are too large are refused
// here, before anything is sent.
{
    const form = document.getElementById('prodcat-try-form');
    const rows = document.getElementById('prodcat-try-rows');
    const template = document.getElementById('prodcat-try-row');
    let counter = rows ? rows.children.length : 0;

    function el(tag, attrs, text) {
        const node = document.createElement(tag);
        Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
        if (text !== undefined) { node.textContent = text; }
        return node;
    }

    function addRow() {
        const fragment = template.content.cloneNode(true);
        const row = fragment.querySelector('[data-prodcat-try-row]');
        counter += 1;
        row.querySelectorAll('input').forEach((input, i) => {
            const id = 'prodcat-' + input.name + '-' + counter;
            input.id = id;
            row.querySelectorAll('label')[i].setAttribute('for', id);
        });
        rows.appendChild(fragment);
        return rows.lastElementChild;
    }

    function emptyRow() {
        const free = Array.from(rows.children).find((row) => {
            const file = row.querySelector('input[type=file]');
            return !file.files.length && !row.querySelector('input[name=title]').value.trim();
        });
        return free || addRow();
    }

    function titleFrom(name) {
        return name.replace(/\.[^.]+$/, '').replace(/[-_]+/g, ' ').trim();
    }

    function addFiles(files) {
        Array.from(files).forEach((file) => {
            const row = emptyRow();
            const input = row.querySelector('input[type=file]');
            const transfer = new DataTransfer();
            transfer.items.add(file);
            input.files = transfer.files;
            row.querySelector('input[name=title]').value = titleFrom(file.name);
        });
    }

    function problem(file) {
        const max = Number(form.dataset.maxBytes);
        if (!file.type.startsWith('image/')) {
            return '“' + file.name + '” is not an image' + (file.type ? ' (' + file.type + ')' : '') +
                '. Choose a photo: JPEG, PNG, WebP, GIF, TIFF, BMP or AVIF.';
        }
        if (file.size > max) {
            return '“' + file.name + '” is ' + (file.size / 1048576).toFixed(1) + ' MB; photos may be up to ' +
                form.dataset.maxMb + ' MB. Make it smaller and try again.';
        }
        return '';
    }

    function showError(slot, text) {
        slot.replaceChildren(el('p', {class: 'errornote'}, text));
    }

    function serverError(status, body) {
        if (status === 413 || status === 403 || status === 401 || status === 503 || status === 429) {
            return (body && body.detail) || ('The server refused the request (' + status + ').');
        }
        if (body && typeof body === 'object') {
            return Object.values(body).flat().join(' ');
        }
        return 'The server could not answer (' + status + ').';
    }

    function bars(labels) {
        const list = el('ul', {class: 'prodcat-scores', 'aria-label': 'Top categories'});
        labels.forEach((item) => {
            const pct = Math.round(item.score * 100);
            const li = el('li', {title: item.label + ': ' + pct + '%'});
            li.appendChild(el('span', {class: 'prodcat-label'}, item.label));
            const bar = el('span', {class: 'prodcat-bar' + (pct >= 90 ? ' prodcat-bar--high' : ''), 'aria-hidden': 'true'});
            bar.appendChild(el('span', {class: 'prodcat-bar__fill', style: 'width: ' + pct + '%'}));
            li.appendChild(bar);
            li.appendChild(el('span', {class: 'prodcat-pct'}, pct + '%'));
            list.appendChild(li);
        });
        return list;
    }

    function words(tokens) {
        const box = el('div', {class: 'prodcat-tokens'});
        const peak = Math.max(...tokens.map((t) => t[1]), 0) || 1;
        tokens.forEach(([word, weight]) => {
            box.appendChild(el('span', {class: 'prodcat-token', style: '--w: ' + (0.55 * weight / peak).toFixed(3),
                title: (weight * 100).toFixed(1) + '%'}, word));
        });
        return box;
    }

    function heatMap(file, regions) {
        const flat = regions.flat();
        const peak = Math.max(...flat, 0);
        const low = Math.min(...flat, 0);
        if (!file || peak <= 0) { return el('p', {class: 'prodcat-decision'}, 'No photo regions to show.'); }
        const box = el('div', {class: 'prodcat-heatmap'});
        box.appendChild(el('img', {src: URL.createObjectURL(file), alt: file.name}));
        const grid = el('div', {class: 'prodcat-heatmap__grid', 'aria-hidden': 'true'});
        flat.forEach((w) => {
            const spread = peak - low;
            grid.appendChild(el('span', {class: 'prodcat-heatmap__cell',
                style: 'opacity: ' + (spread > 1e-9 ? (0.65 * (w - low) / spread).toFixed(3) : '0')}));
        });
        box.appendChild(grid);
        return box;
    }

    function render(slot, answer, file) {
        const out = el('div', {class: 'prodcat-explain'});
        const left = el('div');
        left.appendChild(el('h2', {}, 'Top categories'));
        left.appendChild(bars(answer.labels));
        if (answer.auto_accept) {
            left.appendChild(el('p', {class: 'prodcat-decision'}, 'Sure enough to be filed automatically.'));
        }
        out.appendChild(left);
        if (answer.explanation) {
            const why = el('div');
            why.appendChild(el('h2', {}, 'Title words'));
            why.appendChild(answer.explanation.tokens.length ? words(answer.explanation.tokens)
                : el('p', {class: 'prodcat-decision'}, 'No title words.'));
            why.appendChild(el('h2', {}, 'Photo regions'));
            why.appendChild(heatMap(file, answer.explanation.regions));
            const share = answer.explanation.modality_weight;
            why.appendChild(el('p', {class: 'prodcat-explain__meta'},
                'Attention on the title: ' + Math.round(100 * (share.text || 0)) + '%, on the photo: ' +
                Math.round(100 * (share.image || 0)) + '%.'));
            out.appendChild(why);
        }
        slot.replaceChildren(out);
    }

    function send(row) {
        const slot = row.querySelector('.prodcat-try__result');
        const title = row.querySelector('input[name=title]').value.trim();
        const file = row.querySelector('input[type=file]').files[0];
        if (!title && !file) { slot.replaceChildren(); return Promise.resolve(); }
        if (file) {
            const why = problem(file);
            if (why) { showError(slot, why); return Promise.resolve(); }
        }
        const data = new FormData();
        data.append('title', title);
        if (file) { data.append('image', file); }
        data.append('explain', 'true');
        slot.replaceChildren(el('p', {class: 'prodcat-decision'}, 'Asking the model…'));
        return fetch(form.dataset.suggestUrl, {
            method: 'POST', body: data, credentials: 'same-origin',
            headers: {'X-CSRFToken': form.querySelector('input[name=csrfmiddlewaretoken]').value,
                'Accept': 'application/json'},
        }).then((response) => response.json().catch(() => null).then((body) => {
            if (!response.ok) { showError(slot, serverError(response.status, body)); return; }
            render(slot, body, file);
        })).catch((error) => showError(slot, 'The request failed: ' + error.message));
    }

    if (form) {
        const drop = document.getElementById('prodcat-drop');
        const picker = document.getElementById('prodcat-drop-input');
        drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('is-over'); });
        drop.addEventListener('dragleave', () => drop.classList.remove('is-over'));
        drop.addEventListener('drop', (event) => {
            event.preventDefault();
            drop.classList.remove('is-over');
            addFiles(event.dataTransfer.files);
        });
        drop.addEventListener('click', () => picker.click());
        drop.addEventListener('keydown', (event) => {
            if (event.key === 'Enter' || event.key === ' ') { event.preventDefault(); picker.click(); }
        });
        picker.addEventListener('change', () => { addFiles(picker.files); picker.value = ''; });
        document.getElementById('prodcat-try-add').addEventListener('click', () => {
            addRow().querySelector('input[name=title]').focus();
        });
        form.addEventListener('submit', (event) => {
            event.preventDefault();
            Promise.all(Array.from(rows.children).map(send));
        });
    }
}
