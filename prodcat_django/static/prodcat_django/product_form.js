'use strict';
// The suggestion panel of the product form (admin/product_form.py): moves it beside the
// category field, makes "Use …" and the chips fill that field in (add, for a multiple
// select), and re-fetches the panel while its suggestion is still being computed.
{
    function categoryInput(form, name) {
        return form.querySelector('select[name="' + name + '"], input[name="' + name + '"]');
    }

    function use(button) {
        const panel = button.closest('[data-prodcat-panel]');
        const form = panel.closest('form') || document.querySelector('#content-main form');
        if (!form) { return; }
        const field = panel.dataset.prodcatCategoryField;
        const input = categoryInput(form, field);
        const value = button.dataset.prodcatUse;
        const name = button.dataset.prodcatUseName;
        if (!input) { return; }
        if (input.tagName === 'SELECT') {
            let option = Array.from(input.options).find((o) => o.value === value);
            if (!option) {  // an autocomplete select holds only its current choice
                option = new Option(name, value, false, false);
                input.add(option);
            }
            if (!input.multiple) {
                input.value = value;
            }
            option.selected = true;
        } else {
            input.value = value;  // raw_id_fields
        }
        input.dispatchEvent(new Event('change', {bubbles: true}));
        let used = form.querySelector('input[name="' + panel.dataset.prodcatUsedField + '"]');
        if (!used) {
            used = document.createElement('input');
            used.type = 'hidden';
            used.name = panel.dataset.prodcatUsedField;
            form.appendChild(used);
        }
        used.value = button.dataset.prodcatSuggestion;
        const done = panel.querySelector('.prodcat-panel__done');
        if (done) { done.hidden = false; }
        panel.querySelectorAll('[data-prodcat-use]').forEach((b) => {
            b.setAttribute('aria-pressed', String(b === button));
        });
    }

    function place(panel) {
        // Beside the category field when the form has one; the read-only row stays otherwise.
        const form = panel.closest('form');
        const field = panel.dataset.prodcatCategoryField;
        const row = form && form.querySelector('.form-row.field-' + field + ', .fieldBox.field-' + field);
        const home = panel.closest('.form-row');
        if (row && home && row !== home) {
            const target = row.querySelector('.flex-container') || row;
            target.insertAdjacentElement('afterend', panel);
            home.hidden = true;
        }
    }

    function poll(panel) {
        const url = panel.dataset.prodcatPollUrl;
        if (!url) { return; }
        const wait = Number(panel.dataset.prodcatPollMs) || 2000;
        window.setTimeout(() => {
            fetch(url, {credentials: 'same-origin', headers: {'X-Requested-With': 'XMLHttpRequest'}})
                .then((r) => { if (!r.ok) { throw new Error(r.status); } return r.text(); })
                .then((html) => {
                    const holder = document.createElement('div');
                    holder.innerHTML = html.trim();
                    const fresh = holder.querySelector('[data-prodcat-panel]');
                    if (!fresh) { return; }
                    panel.replaceWith(fresh);
                    poll(fresh);
                })
                .catch(() => window.setTimeout(() => poll(panel), wait * 4));
        }, wait);
    }

    document.addEventListener('click', (event) => {
        const button = event.target.closest('[data-prodcat-use]');
        if (button) {
            event.preventDefault();
            use(button);
        }
    });
    window.addEventListener('DOMContentLoaded', () => {
        document.querySelectorAll('[data-prodcat-panel]').forEach((panel) => {
            place(panel);
            poll(panel);
        });
    });
}
