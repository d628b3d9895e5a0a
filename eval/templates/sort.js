// Sorts the rows of the table holding header cell `th` by that column (several galleries may
// share a page); cells sort by their data-value.
function sortBy(th) {
  const table = th.closest('table');
  const body = table.tBodies[0];
  const col = th.cellIndex;
  const down = th.dataset.dir !== 'desc';
  table.querySelectorAll('th').forEach(t => delete t.dataset.dir);
  th.dataset.dir = down ? 'desc' : 'asc';
  const key = r => { const v = parseFloat(r.children[col].dataset.value); return isNaN(v) ? -Infinity : v; };
  [...body.rows].sort((a, b) => down ? key(b) - key(a) : key(a) - key(b)).forEach(r => body.appendChild(r));
}
